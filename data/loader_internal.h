/* loader_internal.h: the loader's structs and the functions its files share
 * (loader.c: opening, closing, statistics; loader_sample.c: sample reads;
 * loader_order.c: the permutation and the blend schedule;
 * loader_prefetch.c: batches and the prefetch thread; loader_state.c:
 * state JSON; loader_valid.c: the held-out pass). Calls go one way:
 * loader.c -> loader_prefetch.c -> loader_sample.c, loader_order.c. */
#ifndef HUG_DATA_LOADER_INTERNAL_H
#define HUG_DATA_LOADER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "loader.h"

struct loader_src {
	char *label;
	char *glob;
	double weight;                /* normalised */
	int n_files;
	struct shard_reader **shards; /* (n_files) */
	int64_t *start;               /* (n_files + 1) stream offset of each */
	int64_t n_tokens, n_train, n_valid, dropped;
};

/* Where the global draw sequence stands. */
struct loader_pos {
	int64_t cursor;
	int64_t drawn[LOADER_MAX_SOURCES];
};

/* One produced batch, with the position after it. */
struct loader_slot {
	int32_t *inputs, *targets;            /* (B, T) */
	struct loader_pos after;
	int64_t rows[LOADER_MAX_SOURCES];     /* this rank's rows per source */
	int rc;
	struct hug_error err;
};

struct loader {
	int n_src;
	struct loader_src src[LOADER_MAX_SOURCES];
	int64_t T, B;
	int rank, world;
	uint64_t seed;
	uint64_t blend_offset;
	uint64_t thr[LOADER_MAX_SOURCES]; /* draw picks first s: u < thr[s] */
	const struct shard_meta *meta;

	/* consumer side: what loader_next has handed out */
	struct loader_pos pos;
	int64_t served_rows[LOADER_MAX_SOURCES];
	bool failed;
	struct hug_error fail;

	/* producer side: owned by the prefetch thread while it runs */
	struct loader_pos prod;
	int32_t *win;                 /* (T + 1) */
	uint8_t *wmask;               /* (T + 1) */

	/* prefetch queue: slots[head .. head + count) are ready */
	int prefetch;
	struct loader_slot *slots;
	int head, count;
	bool stop, running;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
};

/* ---- loader_order.c ---- */

/* Position i of a seeded pseudo-random permutation of [0, n) (n >= 1). */
int64_t loader_perm(uint64_t key, int64_t n, int64_t i);

/* The permutation key of source s in epoch e. */
uint64_t loader_perm_key(uint64_t seed, int s, int64_t epoch);

/* Sets L->thr and L->blend_offset from the normalised weights and seed. */
void loader_blend_setup(struct loader *L);

/* The source that global draw g picks. */
int loader_pick(const struct loader *L, int64_t g);

/* Advances pos by one draw; returns its source in *s and how many draws of
 * that source came before it in *c. */
void loader_draw(const struct loader *L, struct loader_pos *pos, int *s,
		 int64_t *c);

/* The training sample index of the c-th draw of source s. */
int64_t loader_sample_of(const struct loader *L, int s, int64_t c);

/* ---- loader_sample.c ---- */

/* Reads sample `idx` (any index below n_train + n_valid) of source s into
 * win / wmask (T + 1 each). Returns 0 or -1 with err set. */
int loader_read_sample(const struct loader *L, int s, int64_t idx,
		       int32_t *win, uint8_t *wmask, struct hug_error *err);

/* Writes one (inputs, targets) row of T from a window. */
void loader_window_to_row(const int32_t *win, const uint8_t *wmask,
			  int64_t T, int32_t *inputs, int32_t *targets);

/* ---- loader_prefetch.c ---- */

/* Initialises the queue and starts the thread when L->prefetch > 0.
 * Returns 0 or -1 with err set. */
int loader_prefetch_start(struct loader *L, struct hug_error *err);

/* Stops and joins the thread (if running) and empties the queue. */
void loader_prefetch_stop(struct loader *L);

#endif
