/* train_fixture.c: synthetic shards and recipes for training tests. */
#include "train_fixture.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../data/shard.h"
#include "../io/safetensors.h"
#include "../train/trainer.h"
#include "harness.h"

const char *train_fixture_shards_of(int n_shards, int64_t tokens_per_shard, const char *source,
				    uint64_t seed, bool masked, train_fixture_doc_fn doc)
{
	static char dir[64];
	snprintf(dir, sizeof(dir), "/tmp/hug-train-XXXXXX");
	if (!mkdtemp(dir))
		return NULL;
	struct shard_meta meta = { .vocab_size = 64, .eos_id = 2 };
	snprintf(meta.tokenizer_hash, sizeof(meta.tokenizer_hash), "test");
	snprintf(meta.source, sizeof(meta.source), "%s", source);
	int32_t ids[96];
	uint8_t mask[96];
	uint64_t x = seed;
	for (int s = 0; s < n_shards; s++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/shard-%05d.h5", dir, s);
		struct shard_writer *w;
		struct hug_error err = { 0 };
		if (shard_writer_open(&w, path, &meta, masked, &err))
			return NULL;
		while (shard_writer_tokens(w) < tokens_per_shard) {
			int n = doc(&x, ids, masked ? mask : NULL);
			if (shard_writer_append(w, ids, masked ? mask : NULL, n, &err)) {
				shard_writer_discard(w);
				return NULL;
			}
		}
		if (shard_writer_close(w, &err))
			return NULL;
	}
	return dir;
}

/* A document: start, stride, then counting mod 60 (+4), then EOS. */
static int counting_doc(uint64_t *x, int32_t *ids, uint8_t *mask)
{
	(void)mask;
	*x = *x * 6364136223846793005ull + 1442695040888963407ull;
	int start = (int)(*x >> 33) % 60, stride = 1 + (int)(*x >> 40) % 3;
	int n = 20 + (int)(*x >> 50) % 19;
	for (int i = 0; i < n; i++)
		ids[i] = 4 + (start + i * stride) % 60;
	ids[n] = 2;
	return n + 1;
}

const char *train_fixture_shards(int n_shards, int64_t tokens_per_shard)
{
	return train_fixture_shards_of(n_shards, tokens_per_shard, "counting", 12345, false,
				       counting_doc);
}

int train_fixture_recipe(const char *path, const char *glob, const char *out_dir,
			 const char *model_extra, const char *train_extra, const char *top_extra)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f,
		"{\"model\": {\"vocab_size\": 64, \"hidden_size\": 32, \"n_layer\": 2, \"n_head\": 4,"
		" \"initializer_range\": 0.05%s},\n"
		" \"data\": {\"train\": [{\"path\": \"%s\"}], \"seq_len\": 32},\n"
		" \"optim\": {\"lr\": 0.003, \"weight_decay\": 0.01},\n"
		" \"schedule\": {\"warmup_steps\": 10, \"min_lr\": 0.0003},\n"
		" \"batch\": {\"micro_batch_size\": 4, \"global_batch_size\": 8},\n"
		" \"train\": {\"out_dir\": \"%s\", \"log_every\": 1%s}%s}\n",
		model_extra ? model_extra : "", glob, out_dir, train_extra ? train_extra : "",
		top_extra ? top_extra : "");
	return fclose(f);
}

int train_fixture_recipe_in(const char *dir, const char *model_extra, const char *train_extra,
			    const char *top_extra)
{
	char glob[512], recipe[512], out[512];
	snprintf(glob, sizeof(glob), "%s/shard-*.h5", dir);
	snprintf(recipe, sizeof(recipe), "%s/recipe.json", dir);
	snprintf(out, sizeof(out), "%s/run", dir);
	return train_fixture_recipe(recipe, glob, out, model_extra, train_extra, top_extra);
}

const char *train_fixture_setup(int64_t tokens, const char *model_extra,
				const char *train_extra)
{
	const char *dir = train_fixture_shards(1, tokens);
	if (!dir || train_fixture_recipe_in(dir, model_extra, train_extra, NULL))
		return NULL;
	return dir;
}

int train_fixture_hug(char *out, size_t n, const char *fmt, ...)
{
	char cmd[2048];
	int used = snprintf(cmd, sizeof(cmd), "%s ", getenv("HUG_BIN"));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd + used, sizeof(cmd) - (size_t)used, fmt, ap);
	va_end(ap);
	return test_run_command(cmd, out, n);
}

void train_fixture_rmtree(const char *path)
{
	char cmd[512];
	if (!path || strncmp(path, "/tmp/hug-", 9))
		return; /* only what the fixtures made */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", path);
}

int train_fixture_open(const char *dir, const char *const *ov, int n_ov, struct recipe *r,
		       struct trainer *t)
{
	char path[512];
	struct hug_error err = { 0 };
	snprintf(path, sizeof(path), "%s/recipe.json", dir);
	if (recipe_load(path, ov, n_ov, 1, r, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return -1;
	}
	if (trainer_init(t, r, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		recipe_free(r);
		return -1;
	}
	return 0;
}

double train_fixture_file_diff(const char *a, const char *b)
{
	struct st_file fa, fb;
	struct hug_error err = { 0 };
	if (st_open(&fa, a, &err))
		return INFINITY;
	if (st_open(&fb, b, &err)) {
		st_close(&fa);
		return INFINITY;
	}
	double worst = fa.n == fb.n && fa.n > 0 ? 0 : INFINITY;
	for (int i = 0; i < fa.n; i++) {
		const struct st_tensor *x = &fa.tensors[i], *y = st_find(&fb, x->name);
		if (!y || y->nbytes != x->nbytes || x->dtype != DT_F32 || y->dtype != DT_F32) {
			worst = INFINITY;
			continue;
		}
		const char *p = x->data, *q = y->data; /* maybe unaligned */
		for (size_t k = 0; k < x->nbytes / 4; k++) {
			float u, v;
			memcpy(&u, p + 4 * k, 4);
			memcpy(&v, q + 4 * k, 4);
			worst = fmax(worst, fabs((double)u - (double)v));
		}
	}
	st_close(&fa);
	st_close(&fb);
	return worst;
}
