/* alloc.c: aborting allocation wrappers with an allocation counter. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "panic.h"

static atomic_uint_fast64_t n_allocs;

static void *checked(void *p, size_t size, const char *file, int line)
{
	if (!p)
		hug_panic_at(file, line, "out of memory allocating %zu bytes", size);
	atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
	return p;
}

void *hug_malloc_at(size_t size, const char *file, int line)
{
	return checked(malloc(size ? size : 1), size, file, line);
}

void *hug_calloc_at(size_t n, size_t size, const char *file, int line)
{
	if (size && n > SIZE_MAX / size)
		hug_panic_at(file, line, "allocation of %zu x %zu bytes overflows", n, size);
	return checked(calloc(n ? n : 1, size ? size : 1), n * size, file, line);
}

void *hug_realloc_at(void *p, size_t size, const char *file, int line)
{
	return checked(realloc(p, size ? size : 1), size, file, line);
}

void *hug_aligned_alloc_at(size_t align, size_t size, const char *file, int line)
{
	void *p = NULL;
	if (posix_memalign(&p, align, size ? size : 1) != 0)
		p = NULL;
	return checked(p, size, file, line);
}

char *hug_strdup_at(const char *s, const char *file, int line)
{
	size_t n = strlen(s) + 1;
	char *d = hug_malloc_at(n, file, line);
	memcpy(d, s, n);
	return d;
}

void hug_free(void *p)
{
	free(p);
}

uint64_t hug_alloc_count(void)
{
	return atomic_load_explicit(&n_allocs, memory_order_relaxed);
}
