/* arena.h: bump allocators that own all tensor memory. Tensors never own
 * memory. A model arena lives for the run (parameters, gradients, optimizer
 * state); a step arena holds activations, gradients of activations and tape
 * nodes and is reset after every step.
 *
 * An arena grows by adding chunks when a request does not fit. On reset, an
 * arena that had to grow replaces its chunks by one chunk of the combined
 * size, so from the second step on a step of the same shape is served from
 * that single block and allocates nothing. */
#ifndef HUG_AUTOGRAD_ARENA_H
#define HUG_AUTOGRAD_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

#define ARENA_ALIGN 64

struct arena_chunk;

/* Where an arena's chunks come from: host memory by default; the CUDA
 * backend supplies device allocators. */
struct arena_allocator {
	enum device device;
	void *(*alloc)(size_t size);   /* aborts on failure */
	void (*free)(void *p);
	void (*zero)(void *p, size_t size); /* memset 0 on that device */
};

struct arena {
	const char *name;                    /* for messages: "model", "step" */
	const struct arena_allocator *allocator;
	struct arena_chunk *chunks;          /* newest first */
	size_t default_chunk;                /* bytes of a new chunk, at least */
	size_t used;                         /* bytes handed out since reset */
	size_t high_water;                   /* max of used over the lifetime */
	uint64_t n_chunk_allocs;             /* chunks ever allocated */
	struct arena *meta;                  /* device arenas: a host arena for
						tensor headers and tape nodes,
						made on first use (else NULL) */
};

/* The host allocator (aligned malloc/free/memset). */
extern const struct arena_allocator arena_host_allocator;

/* Initialises an empty arena; `chunk_bytes` is the size of the first chunk
 * (0 picks 1 MiB); nothing is allocated until the first request. `allocator`
 * NULL means host memory. */
void arena_init(struct arena *a, const char *name, size_t chunk_bytes,
		const struct arena_allocator *allocator);

/* Releases every chunk; the arena may be initialised again. */
void arena_free(struct arena *a);

/* Returns `size` bytes aligned to ARENA_ALIGN, valid until the next reset
 * or free. Contents are unspecified. Aborts if memory runs out. */
void *arena_alloc(struct arena *a, size_t size);

/* As arena_alloc, for host-side bookkeeping (tensor headers, tape nodes):
 * from `a` itself when it is host memory, else from its host companion
 * a->meta (created on first use, reset and freed with `a`), so the host
 * never writes into device memory. */
void *arena_alloc_meta(struct arena *a, size_t size);

/* As arena_alloc, zero-filled. */
void *arena_calloc(struct arena *a, size_t size);

/* Forgets every allocation. If more than one chunk exists, they are freed
 * and replaced by one chunk large enough for the peak usage so far. */
void arena_reset(struct arena *a);

/* True when p points into memory `a` handed out (its chunks, or those of
 * its host companion a->meta): tells an arena's tensors from others. */
bool arena_holds(const struct arena *a, const void *p);

/* Total bytes of chunks currently held. */
size_t arena_capacity(const struct arena *a);

#endif
