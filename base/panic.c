/* panic.c: print-and-abort for broken invariants. */
#include "panic.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void (*panic_hook)(void);

void hug_panic_set_hook(void (*hook)(void))
{
	panic_hook = hook;
}

_Noreturn void hug_panic_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "hug: panic at %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	if (panic_hook)
		panic_hook();
	abort();
}
