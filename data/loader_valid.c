/* loader_valid.c: one pass over the held-out samples. They are numbered
 * source by source (each source's validation tail in stream order), and
 * rank r takes numbers r, r + world, ..., so the ranks split the set
 * disjointly and together cover it once. */
#include "loader_internal.h"

#include <string.h>

#include "../base/alloc.h"

struct loader_valid {
	struct loader *L;
	int64_t next;   /* next held-out number this rank serves */
	int64_t total;  /* held-out samples of all sources */
	int32_t *win;   /* (T + 1) */
	uint8_t *wmask; /* (T + 1) */
};

int loader_valid_open(struct loader *L, struct loader_valid **vp,
		      struct hug_error *err)
{
	(void)err;
	struct loader_valid *v = hug_calloc(1, sizeof(*v));
	v->L = L;
	v->next = L->rank;
	v->total = loader_valid_samples(L);
	v->win = hug_malloc((size_t)(L->T + 1) * sizeof(int32_t));
	v->wmask = hug_malloc((size_t)(L->T + 1));
	*vp = v;
	return 0;
}

/* Source and sample index of held-out number n (< total). */
static void locate(const struct loader *L, int64_t n, int *s, int64_t *idx)
{
	int i = 0;
	while (n >= L->src[i].n_valid) {
		n -= L->src[i].n_valid;
		i++;
	}
	*s = i;
	*idx = L->src[i].n_train + n;
}

int64_t loader_valid_next(struct loader_valid *v, int32_t *inputs,
			  int32_t *targets, int32_t *source_ids,
			  struct hug_error *err)
{
	const struct loader *L = v->L;
	int64_t rows = 0;
	for (; rows < L->B && v->next < v->total; rows++) {
		int s;
		int64_t idx;
		locate(L, v->next, &s, &idx);
		if (loader_read_sample(L, s, idx, v->win, v->wmask, err) < 0)
			return -1;
		loader_window_to_row(v->win, v->wmask, L->T,
				     inputs + rows * L->T,
				     targets + rows * L->T);
		if (source_ids)
			source_ids[rows] = s;
		v->next += L->world;
	}
	for (int64_t i = rows; i < L->B; i++) {
		memset(inputs + i * L->T, 0, (size_t)L->T * sizeof(int32_t));
		for (int64_t t = 0; t < L->T; t++)
			targets[i * L->T + t] = LOADER_IGNORE_INDEX;
		if (source_ids)
			source_ids[i] = -1;
	}
	return rows;
}

void loader_valid_limit(struct loader_valid *v, int64_t n)
{
	if (n >= 0 && n < v->total)
		v->total = n;
}

void loader_valid_close(struct loader_valid *v)
{
	if (!v)
		return;
	hug_free(v->win);
	hug_free(v->wmask);
	hug_free(v);
}
