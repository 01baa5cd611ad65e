/* test_shard_util.h: helpers shared by the shard and loader tests: a
 * scratch directory per test and a one-call shard writer. */
#ifndef HUG_TESTS_TEST_SHARD_UTIL_H
#define HUG_TESTS_TEST_SHARD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../data/shard.h"

/* Makes a fresh directory under $TMPDIR (or /tmp) into dir. */
void tsu_tmp_dir(char *dir, size_t n, const char *tag);

/* Removes dir, its plain files and its plain subdirectories' files. */
void tsu_tmp_dir_remove(const char *dir);

/* A meta with vocab_size `vocab`, eos 0, the given hash and source. */
struct shard_meta tsu_meta(int64_t vocab, const char *hash);

/* Writes a shard at `path`: tokens[0 .. n) split into documents of lengths
 * doc_len[0 .. n_docs) (summing to n), with `mask` (n bytes) when not
 * NULL. Fails the current test (and returns -1) on any error. */
int tsu_write_shard(const char *path, const struct shard_meta *meta,
		    const int32_t *tokens, const uint8_t *mask, int64_t n,
		    const int64_t *doc_len, int n_docs);

/* Writes a shard whose token i is (base + i) % vocab, as documents of
 * `doc` tokens (the last shorter), with mask (i % 3 != 0) when with_mask. */
int tsu_write_counting(const char *path, const struct shard_meta *meta,
		       int64_t base, int64_t n, int64_t doc, bool with_mask);

/* True when `msg` contains every one of the NULL-terminated strings;
 * otherwise prints the message and the missing piece. */
bool tsu_has(const char *msg, ...) __attribute__((sentinel));

#endif
