/* buf.h: a growable byte string (text builders, headers, decoded bytes).
 * Start from { 0 }; the bytes are always followed by a NUL that n does not
 * count (p is NULL until the first append). Free with buf_free. */
#ifndef HUG_BASE_BUF_H
#define HUG_BASE_BUF_H

#include <stddef.h>

struct buf {
	char *p;
	size_t n, cap;
};

/* Appends n bytes of s (n may be 0: p then holds at least ""); grows by
 * doubling, aborting on allocation failure. */
void buf_put(struct buf *b, const void *s, size_t n);

/* Appends the NUL-terminated string s. */
void buf_str(struct buf *b, const char *s);

/* Appends printf-formatted text (any length). */
void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Frees the bytes and resets b to { 0 }. */
void buf_free(struct buf *b);

#endif
