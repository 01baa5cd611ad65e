/* panic.h: the first error tier. A broken invariant is a bug in hug, not in
 * the user's input: print file:line and the reason, then abort (through a
 * hook, so a distributed run can call MPI_Abort and take every rank down). */
#ifndef HUG_BASE_PANIC_H
#define HUG_BASE_PANIC_H

/* Prints "hug: panic at FILE:LINE: <message>" to stderr and never returns. */
#define hug_panic(...) hug_panic_at(__FILE__, __LINE__, __VA_ARGS__)

/* Panics with the failed expression when `cond` is false. Always compiled
 * in: these guard memory safety, not debugging. */
#define HUG_ASSERT(cond)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			hug_panic_at(__FILE__, __LINE__, "assertion failed: %s", \
				     #cond);                                   \
	} while (0)

_Noreturn void hug_panic_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Installs the function called after the message is printed, instead of
 * abort() (e.g. one that calls MPI_Abort). The hook must not return; if it
 * does, abort() follows. NULL restores the default. */
void hug_panic_set_hook(void (*hook)(void));

#endif
