/* arena.c: chunked bump allocator with coalescing reset. */
#include "arena.h"

#include <string.h>

#include "../base/alloc.h"
#include "../base/panic.h"

struct arena_chunk {
	struct arena_chunk *next;
	char *base;  /* ARENA_ALIGN-aligned, from the allocator */
	size_t size;
	size_t off;
};

static void *host_alloc(size_t size)
{
	return hug_aligned_alloc(ARENA_ALIGN, size);
}

static void host_zero(void *p, size_t size)
{
	memset(p, 0, size);
}

const struct arena_allocator arena_host_allocator = {
	.device = DEV_CPU,
	.alloc = host_alloc,
	.free = hug_free,
	.zero = host_zero,
};

void arena_init(struct arena *a, const char *name, size_t chunk_bytes,
		const struct arena_allocator *allocator)
{
	memset(a, 0, sizeof(*a));
	a->name = name;
	a->allocator = allocator ? allocator : &arena_host_allocator;
	a->default_chunk = chunk_bytes ? chunk_bytes : (size_t)1 << 20;
}

static void free_chunks(struct arena *a)
{
	struct arena_chunk *c = a->chunks;
	while (c) {
		struct arena_chunk *next = c->next;
		a->allocator->free(c->base);
		hug_free(c);
		c = next;
	}
	a->chunks = NULL;
}

void arena_free(struct arena *a)
{
	free_chunks(a);
	a->used = 0;
	if (a->meta) {
		arena_free(a->meta);
		hug_free(a->meta);
		a->meta = NULL;
	}
}

static struct arena_chunk *add_chunk(struct arena *a, size_t size)
{
	struct arena_chunk *c = hug_malloc(sizeof(*c));
	c->base = a->allocator->alloc(size);
	c->size = size;
	c->off = 0;
	c->next = a->chunks;
	a->chunks = c;
	a->n_chunk_allocs++;
	return c;
}

static size_t round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

void *arena_alloc(struct arena *a, size_t size)
{
	size_t need = round_up(size ? size : 1, ARENA_ALIGN);
	struct arena_chunk *c = a->chunks;
	if (!c || c->size - c->off < need) {
		size_t grow = a->default_chunk;
		/* grow geometrically so a long first step makes few chunks */
		if (c && c->size * 2 > grow)
			grow = c->size * 2;
		c = add_chunk(a, need > grow ? need : grow);
	}
	void *p = c->base + c->off;
	c->off += need;
	a->used += need;
	if (a->used > a->high_water)
		a->high_water = a->used;
	return p;
}

void *arena_alloc_meta(struct arena *a, size_t size)
{
	if (a->allocator->device == DEV_CPU)
		return arena_alloc(a, size);
	if (!a->meta) {
		a->meta = hug_malloc(sizeof(*a->meta));
		arena_init(a->meta, a->name, 0, NULL);
	}
	return arena_alloc(a->meta, size);
}

void *arena_calloc(struct arena *a, size_t size)
{
	void *p = arena_alloc(a, size);
	a->allocator->zero(p, size);
	return p;
}

void arena_reset(struct arena *a)
{
	if (a->chunks && a->chunks->next) {
		/* Chunks are never split across allocations, so the sum of
		 * chunk sizes bounds the peak; one block of that size serves
		 * the same sequence of requests without growing. */
		size_t total = arena_capacity(a);
		free_chunks(a);
		add_chunk(a, total);
	} else if (a->chunks) {
		a->chunks->off = 0;
	}
	a->used = 0;
	if (a->meta)
		arena_reset(a->meta);
}

bool arena_holds(const struct arena *a, const void *p)
{
	uintptr_t q = (uintptr_t)p;
	for (const struct arena_chunk *c = a->chunks; c; c = c->next)
		if (q >= (uintptr_t)c->base && q - (uintptr_t)c->base < c->size)
			return true;
	return a->meta && arena_holds(a->meta, p);
}

size_t arena_capacity(const struct arena *a)
{
	size_t total = 0;
	for (const struct arena_chunk *c = a->chunks; c; c = c->next)
		total += c->size;
	return total;
}
