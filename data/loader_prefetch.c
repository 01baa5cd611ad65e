/* loader_prefetch.c: producing training batches, in order, either on the
 * caller's thread (prefetch 0) or on one background thread that keeps up to
 * `prefetch` batches ready in a ring of slots. Each slot carries the
 * position after its batch, so the consumer's position (what a state save
 * reports) never runs ahead of what it has been given. */
#include "loader_internal.h"

#include <string.h>

#include "../base/alloc.h"

/* Makes the batch that follows position *pos into inputs/targets and
 * advances *pos; rows[s] counts this rank's rows from source s. On a read
 * failure returns -1 with err set and *pos unchanged. */
static int produce(struct loader *L, struct loader_pos *pos, int32_t *inputs,
		   int32_t *targets, int64_t *rows, struct hug_error *err)
{
	struct loader_pos p = *pos;
	memset(rows, 0, sizeof(int64_t) * LOADER_MAX_SOURCES);
	/* A step is B * world consecutive draws; rank j takes the j-th run
	 * of B, so each rank's rows are consecutive draws (a well-mixed
	 * batch for any world size). */
	for (int j = 0; j < L->world; j++) {
		for (int64_t i = 0; i < L->B; i++) {
			int s;
			int64_t c;
			loader_draw(L, &p, &s, &c);
			if (j != L->rank)
				continue;
			int64_t idx = loader_sample_of(L, s, c);
			if (loader_read_sample(L, s, idx, L->win, L->wmask,
					       err) < 0)
				return -1;
			loader_window_to_row(L->win, L->wmask, L->T,
					     inputs + i * L->T,
					     targets + i * L->T);
			rows[s]++;
		}
	}
	*pos = p;
	return 0;
}

static void *worker(void *arg)
{
	struct loader *L = arg;
	pthread_mutex_lock(&L->mu);
	for (;;) {
		while (!L->stop && L->count == L->prefetch)
			pthread_cond_wait(&L->not_full, &L->mu);
		if (L->stop)
			break;
		struct loader_slot *slot =
			&L->slots[(L->head + L->count) % L->prefetch];
		pthread_mutex_unlock(&L->mu);

		hug_error_clear(&slot->err);
		slot->rc = produce(L, &L->prod, slot->inputs, slot->targets,
				   slot->rows, &slot->err);
		slot->after = L->prod;

		pthread_mutex_lock(&L->mu);
		L->count++;
		pthread_cond_signal(&L->not_empty);
		if (slot->rc < 0)
			break; /* the consumer meets the error in order */
	}
	pthread_mutex_unlock(&L->mu);
	return NULL;
}

int loader_prefetch_start(struct loader *L, struct hug_error *err)
{
	L->prod = L->pos;
	L->head = L->count = 0;
	L->stop = false;
	if (L->prefetch == 0)
		return 0;
	if (!L->slots) {
		size_t n = (size_t)(L->B * L->T) * sizeof(int32_t);
		L->slots = hug_calloc((size_t)L->prefetch, sizeof(*L->slots));
		for (int i = 0; i < L->prefetch; i++) {
			L->slots[i].inputs = hug_malloc(n);
			L->slots[i].targets = hug_malloc(n);
		}
	}
	int rc = pthread_create(&L->thread, NULL, worker, L);
	if (rc != 0)
		return hug_error_set(err, "loader: cannot start the prefetch "
				     "thread: %s", strerror(rc));
	L->running = true;
	return 0;
}

void loader_prefetch_stop(struct loader *L)
{
	if (!L->running)
		return;
	pthread_mutex_lock(&L->mu);
	L->stop = true;
	pthread_cond_broadcast(&L->not_full);
	pthread_mutex_unlock(&L->mu);
	pthread_join(L->thread, NULL);
	L->running = false;
	L->head = L->count = 0;
}

/* Hands out the oldest ready slot; returns its rc. */
static int take_slot(struct loader *L, int32_t *inputs, int32_t *targets,
		     struct hug_error *err)
{
	size_t n = (size_t)(L->B * L->T) * sizeof(int32_t);
	pthread_mutex_lock(&L->mu);
	while (L->count == 0)
		pthread_cond_wait(&L->not_empty, &L->mu);
	struct loader_slot *slot = &L->slots[L->head];
	pthread_mutex_unlock(&L->mu);

	int rc = slot->rc;
	if (rc == 0) {
		memcpy(inputs, slot->inputs, n);
		memcpy(targets, slot->targets, n);
		L->pos = slot->after;
		for (int s = 0; s < L->n_src; s++)
			L->served_rows[s] += slot->rows[s];
	} else {
		hug_error_set(&L->fail, "%s", slot->err.msg);
	}

	pthread_mutex_lock(&L->mu);
	L->head = (L->head + 1) % L->prefetch;
	L->count--;
	pthread_cond_signal(&L->not_full);
	pthread_mutex_unlock(&L->mu);
	(void)err;
	return rc;
}

int loader_next(struct loader *L, int32_t *inputs, int32_t *targets,
		struct hug_error *err)
{
	int64_t rows[LOADER_MAX_SOURCES];
	int rc;
	if (L->failed)
		return hug_error_set(err, "%s", L->fail.msg);
	if (L->prefetch == 0) {
		rc = produce(L, &L->pos, inputs, targets, rows, &L->fail);
		if (rc == 0)
			for (int s = 0; s < L->n_src; s++)
				L->served_rows[s] += rows[s];
	} else {
		rc = take_slot(L, inputs, targets, err);
	}
	if (rc == 0)
		return 0;
	L->failed = true;
	return hug_error_set(err, "%s", L->fail.msg);
}

static int check_state(const struct loader *L, const struct loader_state *st,
		       struct hug_error *err)
{
	int64_t sum = 0;
	if (st->version != LOADER_STATE_VERSION)
		return hug_error_set(err, "loader state: version %d, expected "
				     "%d", (int)st->version,
				     LOADER_STATE_VERSION);
	if (st->n_sources != L->n_src)
		return hug_error_set(err, "loader state: %d sources, the loader "
				     "has %d", (int)st->n_sources, L->n_src);
	if (st->seed != L->seed)
		return hug_error_set(err, "loader state: seed %llu, the loader "
				     "has %llu (a resumed run keeps its seed)",
				     (unsigned long long)st->seed,
				     (unsigned long long)L->seed);
	if (st->seq_len != L->T)
		return hug_error_set(err, "loader state: seq_len %lld, the "
				     "loader has %lld", (long long)st->seq_len,
				     (long long)L->T);
	for (int s = 0; s < L->n_src; s++) {
		if (st->n_train[s] != L->src[s].n_train)
			return hug_error_set(err, "loader state: %s had %lld "
					     "training samples, now %lld: the "
					     "data changed since the state was "
					     "saved", L->src[s].label,
					     (long long)st->n_train[s],
					     (long long)L->src[s].n_train);
		if (st->drawn[s] < 0)
			return hug_error_set(err, "loader state: %s: drawn "
					     "%lld < 0", L->src[s].label,
					     (long long)st->drawn[s]);
		sum += st->drawn[s];
	}
	if (st->cursor < 0 || sum != st->cursor)
		return hug_error_set(err, "loader state: cursor %lld is not the "
				     "sum of the draws per source (%lld)",
				     (long long)st->cursor, (long long)sum);
	return 0;
}

void loader_state_save(const struct loader *L, struct loader_state *st)
{
	memset(st, 0, sizeof(*st));
	st->version = LOADER_STATE_VERSION;
	st->n_sources = L->n_src;
	st->seed = L->seed;
	st->seq_len = L->T;
	st->cursor = L->pos.cursor;
	for (int s = 0; s < L->n_src; s++) {
		st->drawn[s] = L->pos.drawn[s];
		st->n_train[s] = L->src[s].n_train;
	}
}

int loader_state_restore(struct loader *L, const struct loader_state *st,
			 struct hug_error *err)
{
	if (check_state(L, st, err) < 0)
		return -1;
	loader_prefetch_stop(L);
	memset(&L->pos, 0, sizeof(L->pos));
	L->pos.cursor = st->cursor;
	for (int s = 0; s < L->n_src; s++)
		L->pos.drawn[s] = st->drawn[s];
	L->failed = false;
	hug_error_clear(&L->fail);
	if (loader_prefetch_start(L, &L->fail) == 0)
		return 0;
	L->failed = true;
	return hug_error_set(err, "%s", L->fail.msg);
}
