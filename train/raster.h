/* raster.h: a small RGB rasterizer for plots: rectangles, anti-aliased
 * polylines and discs (coverage from the distance of each pixel centre to
 * the shape), and text in a built-in 5x7 bitmap font (with two descender
 * rows) scaled by whole pixels. Coordinates are pixels, x right and y down;
 * pixel (i, j) covers [i, i+1) x [j, j+1), its centre is (i + 0.5, j + 0.5). */
#ifndef HUG_TRAIN_RASTER_H
#define HUG_TRAIN_RASTER_H

#include <stdint.h>

struct raster_color {
	uint8_t r, g, b;
};

struct raster {
	int w, h;
	uint8_t *rgb;   /* (h, w, 3), rows top to bottom */
};

/* A clip rectangle of whole pixels, [x0, x1) x [y0, y1). */
struct raster_rect {
	int x0, y0, x1, y1;
};

/* Glyph cell: 5 x 9 pixels (7 above the baseline, 2 below) before scaling;
 * characters advance by RASTER_GLYPH_ADVANCE. */
#define RASTER_GLYPH_W 5
#define RASTER_GLYPH_H 9
#define RASTER_GLYPH_CAP 7
#define RASTER_GLYPH_ADVANCE 6

/* Makes r a w x h image (w, h >= 1) filled with bg; free with raster_free. */
void raster_init(struct raster *r, int w, int h, struct raster_color bg);

/* Frees the pixels of r (which may be zeroed or already freed). */
void raster_free(struct raster *r);

/* The pixel at (x, y), which must lie inside r. */
struct raster_color raster_get(const struct raster *r, int x, int y);

/* Mixes c into pixel (x, y) with opacity a in [0, 1]; outside r: no-op. */
void raster_blend(struct raster *r, int x, int y, struct raster_color c, float a);

/* Paints [x0, x1) x [y0, y1), clipped to r, with c. */
void raster_fill_rect(struct raster *r, int x0, int y0, int x1, int y1,
		      struct raster_color c);

/* Strokes the polyline through the n points (x[i], y[i]) with a line of
 * `width` pixels, anti-aliased, drawing only inside clip (and r). Joints
 * are round and overlapping segments do not darken each other. A single
 * point draws a dot of diameter `width`. */
void raster_polyline(struct raster *r, const double *x, const double *y, int n,
		     double width, struct raster_color c, struct raster_rect clip);

/* Fills the disc of `radius` pixels at (cx, cy), anti-aliased, inside clip. */
void raster_disc(struct raster *r, double cx, double cy, double radius,
		 struct raster_color c, struct raster_rect clip);

/* Width in pixels of s drawn at `scale` (no trailing gap); 0 for "". */
int raster_text_width(const char *s, int scale);

/* Draws s with the top-left of its first glyph cell at (x, y), every font
 * pixel a scale x scale block; clipped to r. Characters the font lacks are
 * drawn as '?'. */
void raster_text(struct raster *r, int x, int y, const char *s, int scale,
		 struct raster_color c);

#endif
