/* error.c: recording and wrapping of user-facing error messages. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int hug_error_set(struct hug_error *e, const char *fmt, ...)
{
	va_list ap;
	if (!e || e->set)
		return -1;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	e->set = true;
	return -1;
}

int hug_error_wrap(struct hug_error *e, const char *fmt, ...)
{
	char old[HUG_ERROR_MAX];
	va_list ap;
	if (!e)
		return -1;
	memcpy(old, e->set ? e->msg : "error", e->set ? sizeof(old) : sizeof("error"));
	va_start(ap, fmt);
	int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	size_t used = n < 0 ? 0 : (size_t)n < sizeof(e->msg) ? (size_t)n : sizeof(e->msg) - 1;
	size_t room = sizeof(e->msg) - used;
	if (room > 2) {
		memcpy(e->msg + used, ": ", 2);
		size_t len = strnlen(old, sizeof(old) - 1);
		if (len > room - 3)
			len = room - 3;
		memcpy(e->msg + used + 2, old, len);
		e->msg[used + 2 + len] = '\0';
	}
	e->set = true;
	return -1;
}

void hug_error_clear(struct hug_error *e)
{
	e->set = false;
	e->msg[0] = '\0';
}
