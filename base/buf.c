/* buf.c: the growable byte string of buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

/* Makes room for `extra` more bytes and the NUL. */
static void buf_reserve(struct buf *b, size_t extra)
{
	size_t need = b->n + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? 2 * b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->p = hug_realloc(b->p, cap);
	b->cap = cap;
}

void buf_put(struct buf *b, const void *s, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

void buf_str(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char small[256];
	int k = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (k < 0)
		return;
	if ((size_t)k < sizeof(small)) {
		buf_put(b, small, (size_t)k);
		return;
	}
	buf_reserve(b, (size_t)k);
	va_start(ap, fmt);
	vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)k;
}

void buf_free(struct buf *b)
{
	hug_free(b->p);
	memset(b, 0, sizeof(*b));
}
