/* font.h: hug's built-in bitmap font for plot labels: 5 x 9 cells (rows
 * 0-6 above the baseline, 7-8 for descenders), drawn for hug. It covers
 * digits, a-z, A-Z, space and the punctuation that numbers and labels use:
 * . , - + : ; = _ / \ ( ) [ ] % ! ? * ' " # < > |. */
#ifndef HUG_TRAIN_FONT_H
#define HUG_TRAIN_FONT_H

#include <stdbool.h>

/* Whether pixel (col, row) of c's glyph is set; col in [0, 5), row in
 * [0, 9), anything outside is unset. A character the font lacks reads as
 * '?'. */
bool font_pixel(char c, int col, int row);

#endif
