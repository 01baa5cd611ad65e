/* alloc.h: allocation that aborts on failure, with a global counter so tests
 * can prove that a code path allocates nothing. Every heap allocation in hug
 * goes through these functions. */
#ifndef HUG_BASE_ALLOC_H
#define HUG_BASE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/* Returns a block of `size` bytes (never NULL; aborts with file:line on
 * failure). size 0 returns a valid 1-byte block. Free with hug_free. */
#define hug_malloc(size) hug_malloc_at((size), __FILE__, __LINE__)
/* As hug_malloc, zero-filled. */
#define hug_calloc(n, size) hug_calloc_at((n), (size), __FILE__, __LINE__)
/* Resizes `p` (NULL allowed); never returns NULL. */
#define hug_realloc(p, size) hug_realloc_at((p), (size), __FILE__, __LINE__)
/* Returns a `size`-byte block aligned to `align` (a power of two >= 8). */
#define hug_aligned_alloc(align, size) hug_aligned_alloc_at((align), (size), __FILE__, __LINE__)
/* Returns a hug_malloc'd copy of the NUL-terminated string `s`. */
#define hug_strdup(s) hug_strdup_at((s), __FILE__, __LINE__)

void *hug_malloc_at(size_t size, const char *file, int line);
void *hug_calloc_at(size_t n, size_t size, const char *file, int line);
void *hug_realloc_at(void *p, size_t size, const char *file, int line);
void *hug_aligned_alloc_at(size_t align, size_t size, const char *file, int line);
char *hug_strdup_at(const char *s, const char *file, int line);

/* Frees a block from any of the functions above; NULL is a no-op. */
void hug_free(void *p);

/* Number of successful allocations (malloc, calloc, realloc, aligned) made
 * so far by this process, all threads together. */
uint64_t hug_alloc_count(void);

#endif
