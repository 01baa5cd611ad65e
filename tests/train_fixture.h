/* train_fixture.h: a tiny learnable corpus in token shards and recipes for
 * the training tests (tests/test_train*.c). */
#ifndef HUG_TESTS_TRAIN_FIXTURE_H
#define HUG_TESTS_TRAIN_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes n_shards shards of documents (repeated counting patterns over a
 * vocabulary of 64, EOS 2 between documents) under a new temporary
 * directory; returns its path (static storage) or NULL. */
const char *train_fixture_shards(int n_shards, int64_t tokens_per_shard);

/* Makes one document into ids[] (and mask[] when the shards are masked):
 * its length, EOS included (at most 96); *x is the generator's state. */
typedef int (*train_fixture_doc_fn)(uint64_t *x, int32_t *ids, uint8_t *mask);

/* What train_fixture_shards does with another document maker: n_shards
 * shards (vocab 64, EOS 2, metadata source `source`, loss masks when
 * `masked`) of documents doc(&x, ...) from x = seed until each holds
 * tokens_per_shard tokens, under a new /tmp/hug-train-* directory; its
 * path (static storage) or NULL. */
const char *train_fixture_shards_of(int n_shards, int64_t tokens_per_shard, const char *source,
				    uint64_t seed, bool masked, train_fixture_doc_fn doc);

/* Writes a recipe for a tiny BLOOM (vocab 64, hidden 32, 2 layers, 4 heads,
 * seq 32) over `glob` to `path`, with JSON members appended to the "model"
 * object (model_extra), the "train" object (train_extra, e.g.
 * ", \"steps\": 40") and the top level (top_extra); each may be NULL.
 * 0 or -1. */
int train_fixture_recipe(const char *path, const char *glob, const char *out_dir,
			 const char *model_extra, const char *train_extra,
			 const char *top_extra);

/* train_fixture_recipe for the shards already in dir: writes
 * dir/recipe.json over dir/shard-*.h5 with out_dir dir/run. 0 or -1. */
int train_fixture_recipe_in(const char *dir, const char *model_extra, const char *train_extra,
			    const char *top_extra);

/* A `hug train` set-up under a new temporary directory DIR: one shard of
 * `tokens` tokens (train_fixture_shards) and DIR/recipe.json
 * (train_fixture_recipe over it, out_dir DIR/run, with model_extra and
 * train_extra). Returns DIR (static storage) or NULL. */
const char *train_fixture_setup(int64_t tokens, const char *model_extra,
				const char *train_extra);

/* Runs "$HUG_BIN <args>" (args printf-formatted), output (stdout and
 * stderr) into out[n]; returns the exit status (test_run_command). */
int train_fixture_hug(char *out, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

struct recipe;
struct trainer;

/* Loads DIR/recipe.json with overrides ov (n_ov) into *r and builds the
 * trainer *t from it (one process). 0, or -1 after recording a test
 * failure with the message (nothing left to free). */
int train_fixture_open(const char *dir, const char *const *ov, int n_ov, struct recipe *r,
		       struct trainer *t);

/* max |a - b| over the tensors of two safetensors files holding the same
 * names, all f32; infinity when a file does not open, is empty, or the
 * names, sizes or dtypes differ. */
double train_fixture_file_diff(const char *a, const char *b);

/* Removes a directory tree made by the fixtures (rm -rf). */
void train_fixture_rmtree(const char *path);

#endif
