/* error.h: the user-input error tier. Functions that read recipes, flags or
 * files return -1 and fill a struct hug_error whose message names the thing
 * (file, key) and what was expected; only main() turns it into an exit. */
#ifndef HUG_BASE_ERROR_H
#define HUG_BASE_ERROR_H

#include <stdbool.h>

#define HUG_ERROR_MAX 1024

struct hug_error {
	bool set;            /* true once a message has been recorded */
	char msg[HUG_ERROR_MAX];
};

/* Records a printf-formatted message in `e` (if `e` is not NULL and holds no
 * message yet: the first error wins) and returns -1, so callers can write
 * `return hug_error_set(e, "...")`. */
int hug_error_set(struct hug_error *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prefixes the message already in `e` with "<printf-formatted>: " (for
 * adding context such as a file name as the error travels up); returns -1. */
int hug_error_wrap(struct hug_error *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Forgets any recorded message. */
void hug_error_clear(struct hug_error *e);

#endif
