/* loader.c: opening a loader (configuration checks, globbing, opening and
 * cross-checking every shard, the per-source sample index, starting the
 * prefetch), statistics and closing. */
#include "loader_internal.h"

#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/panic.h"

static int check_config(const struct loader_config *c, struct hug_error *err)
{
	if (c->n_sources < 1 || c->n_sources > LOADER_MAX_SOURCES || !c->sources)
		return hug_error_set(err, "loader: %d sources, expected 1 .. %d",
				     c->n_sources, LOADER_MAX_SOURCES);
	if (c->seq_len < 1 || c->batch_size < 1)
		return hug_error_set(err, "loader: seq_len %lld and batch_size "
				     "%lld must be >= 1", (long long)c->seq_len,
				     (long long)c->batch_size);
	if (c->world < 1 || c->rank < 0 || c->rank >= c->world)
		return hug_error_set(err, "loader: rank %d of world %d: expected "
				     "0 <= rank < world", c->rank, c->world);
	if (!(c->valid_fraction >= 0 && c->valid_fraction < 1))
		return hug_error_set(err, "loader: valid_fraction %g: expected "
				     "0 <= f < 1", c->valid_fraction);
	if (c->prefetch < 0 || c->prefetch > LOADER_MAX_PREFETCH)
		return hug_error_set(err, "loader: prefetch %d: expected 0 .. %d",
				     c->prefetch, LOADER_MAX_PREFETCH);
	if (c->expect_vocab_size < 0)
		return hug_error_set(err, "loader: expect_vocab_size %lld: "
				     "expected 0 (no check) or a size",
				     (long long)c->expect_vocab_size);
	for (int i = 0; i < c->n_sources; i++) {
		const struct loader_source *s = &c->sources[i];
		char def[32];
		snprintf(def, sizeof(def), "sources[%d]", i);
		const char *label = s->label ? s->label : def;
		if (!s->glob || !s->glob[0])
			return hug_error_set(err, "%s: no path given", label);
		if (!(s->weight > 0) || !isfinite(s->weight))
			return hug_error_set(err, "%s: weight %g: expected a "
					     "finite number > 0", label,
					     s->weight);
	}
	return 0;
}

/* Checks shard r against the loader's first shard and the expectations. */
static int check_shard(struct loader *L, const struct loader_config *cfg,
		       struct shard_reader *r, const char *first_path,
		       struct hug_error *err)
{
	const struct shard_meta *m = shard_reader_meta(r);
	const char *path = shard_reader_path(r);
	if (cfg->expect_vocab_size && m->vocab_size != cfg->expect_vocab_size)
		return hug_error_set(err, "%s: attribute vocab_size is %lld, "
				     "expected %lld (the configured "
				     "vocabulary)", path,
				     (long long)m->vocab_size,
				     (long long)cfg->expect_vocab_size);
	if (cfg->expect_tokenizer_hash &&
	    strcmp(m->tokenizer_hash, cfg->expect_tokenizer_hash) != 0)
		return hug_error_set(err, "%s: attribute tokenizer_hash is "
				     "\"%s\", expected \"%s\": the shard was "
				     "made with another tokenizer (re-run hug "
				     "prepare)", path, m->tokenizer_hash,
				     cfg->expect_tokenizer_hash);
	if (!L->meta)
		return 0;
	if (m->vocab_size != L->meta->vocab_size)
		return hug_error_set(err, "%s: attribute vocab_size is %lld, but"
				     " %s has %lld: all shards must come from "
				     "one tokenizer", path,
				     (long long)m->vocab_size, first_path,
				     (long long)L->meta->vocab_size);
	if (strcmp(m->tokenizer_hash, L->meta->tokenizer_hash) != 0)
		return hug_error_set(err, "%s: attribute tokenizer_hash is "
				     "\"%s\", but %s has \"%s\": all shards "
				     "must come from one tokenizer", path,
				     m->tokenizer_hash, first_path,
				     L->meta->tokenizer_hash);
	return 0;
}

/* The first directory glob(3) could not read (other than a missing one),
 * for the message when nothing matched. */
static _Thread_local char glob_bad_dir[512];
static _Thread_local int glob_bad_errno;

static int glob_note_error(const char *path, int e)
{
	if (e != ENOENT && e != ENOTDIR && !glob_bad_errno) {
		snprintf(glob_bad_dir, sizeof(glob_bad_dir), "%s", path);
		glob_bad_errno = e;
	}
	return 0; /* go on: other directories may still match */
}

static int glob_source(struct loader_src *src, glob_t *g,
		       struct hug_error *err)
{
	glob_bad_errno = 0;
	int rc = glob(src->glob, 0, glob_note_error, g);
	if (rc == 0 && g->gl_pathc > 0)
		return 0;
	if (rc == GLOB_NOSPACE)
		return hug_error_set(err, "%s: %s: out of memory expanding the "
				     "pattern", src->label, src->glob);
	if (glob_bad_errno)
		return hug_error_set(err, "%s: %s matched no files (cannot read"
				     " %s: %s)", src->label, src->glob,
				     glob_bad_dir, strerror(glob_bad_errno));
	return hug_error_set(err, "%s: %s matched no files", src->label,
			     src->glob);
}

/* Opens every file of source s; fills its shard list and stream offsets. */
static int open_files(struct loader *L, const struct loader_config *cfg,
		      struct loader_src *src, const char **first_path,
		      struct hug_error *err)
{
	glob_t g;
	if (glob_source(src, &g, err) < 0) {
		globfree(&g);
		return -1;
	}
	src->shards = hug_calloc(g.gl_pathc, sizeof(*src->shards));
	src->start = hug_calloc(g.gl_pathc + 1, sizeof(*src->start));
	/* every file of the source is checked in one probe (one fork) */
	int rc = shard_readers_open((const char *const *)g.gl_pathv, (int)g.gl_pathc,
				    src->shards, err);
	if (rc == 0)
		src->n_files = (int)g.gl_pathc;
	for (size_t f = 0; f < g.gl_pathc && rc == 0; f++) {
		struct shard_reader *r = src->shards[f];
		rc = check_shard(L, cfg, r, *first_path, err);
		if (!L->meta) {
			L->meta = shard_reader_meta(r);
			*first_path = shard_reader_path(r);
		}
		src->start[f + 1] = src->start[f] + shard_reader_tokens(r);
	}
	globfree(&g);
	if (rc < 0)
		return hug_error_wrap(err, "%s", src->label);
	src->n_tokens = src->start[src->n_files];
	return 0;
}

/* Cuts the source's stream into windows and holds out the validation
 * tail. */
static int index_source(struct loader *L, double valid_fraction,
			struct loader_src *src, struct hug_error *err)
{
	int64_t w = L->T + 1;
	int64_t n = src->n_tokens / w;
	src->dropped = src->n_tokens - n * w;
	src->n_valid = (int64_t)floor((double)n * valid_fraction);
	if (valid_fraction > 0 && src->n_valid == 0)
		src->n_valid = 1;
	src->n_train = n - src->n_valid;
	if (n == 0)
		return hug_error_set(err, "%s: %s: %lld tokens in %d files, "
				     "fewer than one sample of seq_len + 1 = "
				     "%lld tokens", src->label, src->glob,
				     (long long)src->n_tokens, src->n_files,
				     (long long)w);
	if (src->n_train < 1)
		return hug_error_set(err, "%s: %s: %lld samples of %lld "
				     "tokens, none left for training after "
				     "holding out %lld for validation",
				     src->label, src->glob, (long long)n,
				     (long long)w, (long long)src->n_valid);
	return 0;
}

static int open_sources(struct loader *L, const struct loader_config *cfg,
			struct hug_error *err)
{
	const char *first_path = NULL;
	double total = 0;
	for (int i = 0; i < cfg->n_sources; i++) {
		const struct loader_source *cs = &cfg->sources[i];
		struct loader_src *src = &L->src[i];
		char def[32];
		snprintf(def, sizeof(def), "sources[%d]", i);
		src->label = hug_strdup(cs->label ? cs->label : def);
		src->glob = hug_strdup(cs->glob);
		src->weight = cs->weight;
		total += cs->weight;
		L->n_src = i + 1;
		if (open_files(L, cfg, src, &first_path, err) < 0 ||
		    index_source(L, cfg->valid_fraction, src, err) < 0)
			return -1;
	}
	for (int i = 0; i < L->n_src; i++)
		L->src[i].weight /= total;
	return 0;
}

int loader_open(const struct loader_config *cfg, struct loader **Lp,
		struct hug_error *err)
{
	*Lp = NULL;
	if (check_config(cfg, err) < 0)
		return -1;
	struct loader *L = hug_calloc(1, sizeof(*L));
	L->T = cfg->seq_len;
	L->B = cfg->batch_size;
	L->rank = cfg->rank;
	L->world = cfg->world;
	L->seed = cfg->seed;
	L->prefetch = cfg->prefetch;
	pthread_mutex_init(&L->mu, NULL);
	pthread_cond_init(&L->not_empty, NULL);
	pthread_cond_init(&L->not_full, NULL);
	L->win = hug_malloc((size_t)(L->T + 1) * sizeof(int32_t));
	L->wmask = hug_malloc((size_t)(L->T + 1));
	if (open_sources(L, cfg, err) < 0)
		goto fail;
	loader_blend_setup(L);
	if (loader_prefetch_start(L, err) < 0)
		goto fail;
	*Lp = L;
	return 0;
fail:
	loader_close(L);
	return -1;
}

void loader_stats(const struct loader *L, int i,
		  struct loader_source_stats *out)
{
	HUG_ASSERT(i >= 0 && i < L->n_src);
	const struct loader_src *src = &L->src[i];
	*out = (struct loader_source_stats){
		.label = src->label,
		.glob = src->glob,
		.n_files = src->n_files,
		.n_tokens = src->n_tokens,
		.n_train = src->n_train,
		.n_valid = src->n_valid,
		.dropped_tokens = src->dropped,
		.weight = src->weight,
		.drawn = L->pos.drawn[i],
		.epoch = L->pos.drawn[i] / src->n_train,
		.served_tokens = L->served_rows[i] * L->T,
	};
}

const struct shard_meta *loader_meta(const struct loader *L)
{
	return L->meta;
}

int64_t loader_valid_samples(const struct loader *L)
{
	int64_t n = 0;
	for (int s = 0; s < L->n_src; s++)
		n += L->src[s].n_valid;
	return n;
}

void loader_close(struct loader *L)
{
	if (!L)
		return;
	loader_prefetch_stop(L);
	for (int s = 0; s < L->n_src; s++) {
		struct loader_src *src = &L->src[s];
		for (int f = 0; f < src->n_files; f++)
			shard_reader_close(src->shards[f]);
		hug_free(src->shards);
		hug_free(src->start);
		hug_free(src->label);
		hug_free(src->glob);
	}
	for (int i = 0; L->slots && i < L->prefetch; i++) {
		hug_free(L->slots[i].inputs);
		hug_free(L->slots[i].targets);
	}
	hug_free(L->slots);
	hug_free(L->win);
	hug_free(L->wmask);
	pthread_cond_destroy(&L->not_full);
	pthread_cond_destroy(&L->not_empty);
	pthread_mutex_destroy(&L->mu);
	hug_free(L);
}
