/* shard.h: token shards, format v1 (docs/shard-format.md is the spec). One
 * HDF5 file per shard: a 1-D `tokens` dataset (uint16 when vocab_size <=
 * 65536, else int32), `doc_offsets` (int64, n_docs + 1 entries), an optional
 * `loss_mask` (uint8, one per token) and attributes on the root naming the
 * format, its version, the vocabulary, the tokenizer and the source.
 *
 * The writer appends whole documents and publishes the file atomically on
 * close; the reader validates a file completely on open and then serves
 * token ranges by hyperslab. Every HDF5 call made here is serialised by one
 * process-wide lock, so a reader may be shared between threads. A corrupt
 * or truncated file yields an error naming the file, never a crash or
 * HDF5's own stderr dump. */
#ifndef HUG_DATA_SHARD_H
#define HUG_DATA_SHARD_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/error.h"

#define SHARD_FORMAT "hug-shard"
#define SHARD_FORMAT_VERSION 1
/* Largest vocabulary stored as uint16 tokens; above it tokens are int32. */
#define SHARD_U16_MAX_VOCAB 65536

struct shard_meta {
	int64_t vocab_size;      /* 1 .. INT32_MAX; ids are 0 .. vocab_size-1 */
	int32_t eos_id;          /* -1 (none) or 0 .. vocab_size-1 */
	char tokenizer_hash[72]; /* NUL-terminated, e.g. "sha256:<64 hex>" */
	char source[256];        /* NUL-terminated, free text (dataset name) */
};

/* ---- writer ---- */

struct shard_writer;

/* Starts a shard that will appear at `path` on shard_writer_close; until
 * then the data goes to "<path>.tmp" (created or truncated now). `meta` is
 * copied; with_loss_mask adds the loss_mask dataset (then every append must
 * pass a mask). Returns 0 with *w set, or -1 with `err` naming the path and
 * the problem (bad meta, cannot create) and *w NULL. */
int shard_writer_open(struct shard_writer **w, const char *path,
		      const struct shard_meta *meta, bool with_loss_mask,
		      struct hug_error *err);

/* Appends one document of n >= 0 tokens (ids 0 .. vocab_size-1) and, when
 * the shard has a loss mask, its n mask bytes (0 or 1; NULL is an error for
 * such a shard and ignored otherwise). The arrays are copied. Returns 0, or
 * -1 with `err` naming the offending index and value; a rejected document
 * leaves the shard unchanged, so the caller may go on or discard. */
int shard_writer_append(struct shard_writer *w, const int32_t *tokens,
			const uint8_t *loss_mask, int64_t n,
			struct hug_error *err);

/* Tokens appended so far (all documents). */
int64_t shard_writer_tokens(const struct shard_writer *w);

/* Documents appended so far. */
int64_t shard_writer_docs(const struct shard_writer *w);

/* Writes what is buffered and the counts, closes the HDF5 file, fsyncs it
 * and renames "<path>.tmp" to `path` (atomic: `path` is either the old file
 * or the complete new one). Always frees `w` (NULL is a no-op returning 0).
 * Returns 0, or -1 with `err` set; on failure the .tmp file is removed. */
int shard_writer_close(struct shard_writer *w, struct hug_error *err);

/* Abandons the shard: closes and removes "<path>.tmp", frees `w` (NULL is a
 * no-op). `path` itself is never touched. */
void shard_writer_discard(struct shard_writer *w);

/* ---- reader ---- */

struct shard_reader;

/* Opens and validates `path`: an HDF5 file whose root attributes say
 * format "hug-shard" and format_version 1, with vocab_size, eos_id,
 * tokenizer_hash, source, n_tokens and n_docs of the right kinds and in
 * range; `tokens` 1-D uint16 or int32 of n_tokens entries; `doc_offsets`
 * 1-D int64 of n_docs + 1 entries, starting at 0, non-decreasing, ending at
 * n_tokens; `loss_mask`, if present, 1-D 8-bit of n_tokens entries.
 * The superblock is checked by hand first, and the validation runs once in
 * a forked child with a time bound (HUG_SHARD_CHECK_SECONDS, default 10; 0
 * skips it), so a file that crashes or hangs libhdf5 is an error too.
 * Returns 0 with *r set, or -1 with *r NULL and `err` naming the file, the
 * dataset or attribute and what was expected. Close with
 * shard_reader_close. */
int shard_reader_open(const char *path, struct shard_reader **r,
		      struct hug_error *err);

/* shard_reader_open for n files at once, into out[0..n): the same checks,
 * with the validation of all of them in one child process (one fork for a
 * whole source of shards instead of one per file; the time bound is per
 * file). Returns 0 with every out[i] set, or -1 with every out[i] NULL and
 * `err` naming the first file that failed. */
int shard_readers_open(const char *const *paths, int n, struct shard_reader **out,
		       struct hug_error *err);

/* How many checking child processes this process has started (one per
 * shard_reader_open / shard_readers_open call while the check is on): how
 * the tests see that a source's shards cost one fork, not one each. */
int64_t shard_probe_count(void);

/* The shard's metadata (valid while r is open). */
const struct shard_meta *shard_reader_meta(const struct shard_reader *r);

/* n_tokens, n_docs, and whether the shard has a loss_mask dataset. */
int64_t shard_reader_tokens(const struct shard_reader *r);
int64_t shard_reader_docs(const struct shard_reader *r);
bool shard_reader_has_loss_mask(const struct shard_reader *r);
/* The path given to shard_reader_open. */
const char *shard_reader_path(const struct shard_reader *r);

/* Reads tokens [start, start + n) into `tokens` (n int32) and, if `mask` is
 * not NULL, their loss mask into `mask` (n bytes; all 1 for a shard without
 * one). Every id is checked against vocab_size and every mask byte must be
 * 0 or 1 (a file can be corrupt inside its data). Returns 0, or -1 with
 * `err` naming the file and the problem (range outside the shard, bad
 * value, HDF5 read failure). Thread-safe. */
int shard_reader_read(struct shard_reader *r, int64_t start, int64_t n,
		      int32_t *tokens, uint8_t *mask, struct hug_error *err);

/* Reads doc_offsets[first .. first + n) (first + n <= n_docs + 1) into
 * `out`. Returns 0 or -1 with `err` set. */
int shard_reader_doc_offsets(struct shard_reader *r, int64_t first,
			     int64_t n, int64_t *out, struct hug_error *err);

/* Closes the file and frees r (NULL is a no-op). */
void shard_reader_close(struct shard_reader *r);

#endif
