/* loader.h: the training data loader. Reads token shards (data/shard.h)
 * from one or more weighted sources and serves fixed-shape batches of
 * (inputs, targets) for one data-parallel rank, deterministically.
 *
 * Samples. Each source's shards (its glob, sorted by name) form one token
 * stream. Sample i is the window of seq_len + 1 tokens starting at
 * i * (seq_len + 1): windows do not overlap, so every token of the stream
 * is in exactly one sample and each epoch sees it once (the token that
 * starts a window is an input but never a target). A tail shorter than a
 * window is dropped and reported (loader_stats). Windows cross document
 * and shard boundaries; documents are separated by the EOS tokens prepare
 * put in. inputs = window[0 .. T), targets = window[1 .. T]; a target
 * whose loss-mask byte is 0 becomes LOADER_IGNORE_INDEX.
 *
 * Split. The last valid_fraction of each source's samples (at least one
 * when valid_fraction > 0) are held out for validation (loader_valid_*);
 * training never serves them.
 *
 * Order. A global sequence of draws g = 0, 1, 2, ... is the same on every
 * rank. Draw g picks a source with a low-discrepancy schedule: u_g =
 * frac(o + g * (sqrt(5) - 1) / 2) (o from the seed; exact 64-bit fixed
 * point) falls into the source's share of [0, 1) by weight, so after any n
 * draws each source's count is within a few draws of n * weight, on every
 * rank's subsequence too. The c-th draw of source s is sample
 * perm(seed, s, epoch)[c mod n_train] with epoch = c / n_train: a seeded
 * Feistel permutation (O(1) memory), fresh each epoch; a source that runs
 * out starts its next epoch on its own. One step consumes B * world draws
 * (B = batch_size); rank r takes the r-th run of B of them, g = base +
 * r * B + i for row i. So the union over ranks is the global sequence, and
 * within each source's epoch every training sample is served exactly once.
 * (Runs rather than every world-th draw: a rank's rows are then consecutive
 * draws and its batch has the right mix too; with a stride, world sizes
 * like 8 or 21 made rank batches lopsided, often 6 or 7 of 8 rows from
 * one of two equal sources.)
 *
 * State. The position is (cursor = draws consumed by all ranks together,
 * and draws per source); it is the same on every rank after the same number
 * of batches, so rank 0 can save it and any world size can resume from it.
 * The batch sequence is identical with and without prefetch and after a
 * restore. */
#ifndef HUG_DATA_LOADER_H
#define HUG_DATA_LOADER_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "../base/error.h"
#include "shard.h"

#define LOADER_MAX_SOURCES 64
#define LOADER_MAX_PREFETCH 64
#define LOADER_IGNORE_INDEX (-100)
#define LOADER_STATE_VERSION 1

struct loader_source {
	const char *glob;   /* glob(3) pattern: "shards/fr/shard-*.h5" */
	double weight;      /* > 0; weights are normalised over sources */
	const char *label;  /* prefix for messages about this source, e.g.
			     * "data.train[1].path"; NULL: "sources[i]" */
};

struct loader_config {
	const struct loader_source *sources;
	int n_sources;                /* 1 .. LOADER_MAX_SOURCES */
	int64_t seq_len;              /* T >= 1 */
	int64_t batch_size;           /* B >= 1, per-rank micro batch */
	int rank, world;              /* 0 <= rank < world */
	uint64_t seed;
	int64_t expect_vocab_size;    /* the tokenizer's vocabulary (BLOOM:
				       * 250680, not the model's padded
				       * 250880; compare that with
				       * loader_meta()->vocab_size);
				       * 0: don't check */
	const char *expect_tokenizer_hash; /* NULL: don't check */
	double valid_fraction;        /* held-out share of samples, [0, 1) */
	int prefetch;                 /* batches ahead, 0 = synchronous */
};

/* A loader's position: small, fixed layout, rank-independent. n_train is
 * recorded so that a restore against changed data is refused. */
struct loader_state {
	int32_t version;                        /* LOADER_STATE_VERSION */
	int32_t n_sources;
	uint64_t seed;
	int64_t seq_len;
	int64_t cursor;                         /* global draws consumed */
	int64_t drawn[LOADER_MAX_SOURCES];      /* draws per source < cursor */
	int64_t n_train[LOADER_MAX_SOURCES];    /* training samples/source */
};

struct loader_source_stats {
	const char *label;      /* as configured (or "sources[i]") */
	const char *glob;
	int n_files;
	int64_t n_tokens;       /* in all the source's shards */
	int64_t n_train;        /* training samples (windows of T+1) */
	int64_t n_valid;        /* held-out samples */
	int64_t dropped_tokens; /* the tail shorter than a window */
	double weight;          /* normalised */
	int64_t drawn;          /* samples drawn by all ranks (restored) */
	int64_t epoch;          /* drawn / n_train: epochs completed */
	int64_t served_tokens;  /* input tokens this rank served since open */
};

struct loader;
struct loader_valid;

/* Expands every source's glob, opens and validates every shard (all stay
 * open, one file descriptor each), checks that all shards agree on
 * vocab_size and tokenizer_hash and match expect_* when given, builds the
 * sample index and starts the prefetch thread. Returns 0 with *L set, or
 * -1 with *L NULL and `err` naming the source, the file and the problem:
 * "data.train[1].path: shards/xx/shard-*.h5 matched no files". */
int loader_open(const struct loader_config *cfg, struct loader **L,
		struct hug_error *err);

/* Fills the next training batch: inputs and targets are (B, T) int32,
 * row-major, owned by the caller. Returns 0, or -1 with `err` naming the
 * shard when reading fails (a damaged shard); after a failure every call
 * fails the same way until a state restore. */
int loader_next(struct loader *L, int32_t *inputs, int32_t *targets,
		struct hug_error *err);

/* The position after the last batch loader_next returned (batches only
 * prefetched do not count). */
void loader_state_save(const struct loader *L, struct loader_state *st);

/* Moves to position st (from this or another run, any rank or world size):
 * the next batch is the one that followed when st was saved. Drops the
 * prefetched batches and clears a read failure. Returns 0, or -1 with
 * `err` when st does not fit (version, source count, seed, seq_len, or a
 * source's training-sample count differs: the data changed). Weights may
 * differ: the schedule continues from st with the new weights. */
int loader_state_restore(struct loader *L, const struct loader_state *st,
			 struct hug_error *err);

/* st as a JSON object {"version", "seed" (a decimal string: it may exceed
 * 2^53), "seq_len", "cursor", "sources": [{"drawn", "n_train"}, ...]},
 * for trainer_state.json. The caller owns the result (cJSON_Delete). */
cJSON *loader_state_to_json(const struct loader_state *st);

/* Parses what loader_state_to_json made into st. Returns 0, or -1 with
 * `err` naming the key ("data_state.cursor: expected an integer >= 0"),
 * prefixed by `what` (e.g. "trainer_state.json: data"). */
int loader_state_from_json(const cJSON *j, const char *what,
			   struct loader_state *st, struct hug_error *err);

/* Per-source counts for source i (0 <= i < n_sources); pointers in it stay
 * valid while L is open. The realised mix is drawn[i] / sum(drawn). */
void loader_stats(const struct loader *L, int i,
		  struct loader_source_stats *out);

/* The metadata of the first shard (vocab_size and tokenizer_hash are the
 * same for every shard of the loader). */
const struct shard_meta *loader_meta(const struct loader *L);

/* Held-out samples of all sources together (across all ranks). */
int64_t loader_valid_samples(const struct loader *L);

/* Starts one pass over the held-out samples: sources in order, each one's
 * held-out samples in stream order; rank r takes every world-th. The pass
 * reads synchronously on the caller's thread (and may run while training
 * batches are prefetched). Returns 0 with *v set. */
int loader_valid_open(struct loader *L, struct loader_valid **v,
		      struct hug_error *err);

/* Fills up to B rows of the next validation batch (inputs, targets (B, T);
 * source_ids (B) may be NULL, else it receives each row's source index).
 * Rows past the returned count are padding: inputs 0, targets
 * LOADER_IGNORE_INDEX, source -1. Returns the number of real rows, 0 when
 * the pass is over, -1 with `err` set on a read failure. */
int64_t loader_valid_next(struct loader_valid *v, int32_t *inputs,
			  int32_t *targets, int32_t *source_ids,
			  struct hug_error *err);

/* Frees the iterator (NULL is a no-op). Close it before its loader. */
/* Ends the pass after the first n held-out samples (of all ranks
 * together; n >= the total changes nothing). Call before the first next. */
void loader_valid_limit(struct loader_valid *v, int64_t n);
void loader_valid_close(struct loader_valid *v);

/* Stops the prefetch thread, closes every shard and frees L (NULL is a
 * no-op). */
void loader_close(struct loader *L);

/* Packed documents (data.packing "document"), for a batch of inputs and
 * targets (B, T) from loader_next or loader_valid_next: segments (B, T)
 * gets the document id of each input token, a new document starting after
 * each EOS token (prepare ends every document with one; ids count from 0
 * in each row), and the targets of EOS inputs, the next document's first
 * token, become LOADER_IGNORE_INDEX: a document run alone has no such
 * prediction, so a packed row gives each document's own loss terms.
 * eos < 0: every row is one document, targets unchanged. */
void loader_pack_documents(const int32_t *inputs, int32_t *targets, int64_t b, int64_t t,
			   int32_t eos, int32_t *segments);

#endif
