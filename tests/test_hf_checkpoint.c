/* test_hf_checkpoint.c: io/hf_checkpoint and `hug info`: the parameter
 * counts of the released sizes; config.json reading (both key spellings,
 * defaults, one test per class of bad input, each message naming the file
 * and the key) and writing; save/load round trips (single file, >= 3
 * shards, bf16 and f16 rounding, replacing an existing directory); weight
 * errors (missing, misshapen, unexpected and duplicate tensors, truncated
 * files, bad indexes) and names with or without the "transformer." prefix;
 * `hug info` run as a subprocess ($HUG_BIN). With HUG_HF_OUT=DIR set,
 * hf_save_for_python leaves directories for tools/ref/check_hf_load.py. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../autograd/autograd.h"
#include "../base/alloc.h"
#include "../base/json.h"
#include "../io/hf_checkpoint.h"
#include "bloom_util.h"
#include "../io/safetensors.h"
#include "../nn/bloom.h"
#include "../base/fs.h"
#include "harness.h"

/* ---- files ---- */

static void tmp_dir(char *dir, size_t n)
{
	const char *base = getenv("TMPDIR");
	snprintf(dir, n, "%s/hug_hf_XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(dir))
		test_fail_at(__FILE__, __LINE__, "mkdtemp %s failed", dir);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	if (!f || fputs(text, f) < 0)
		test_fail_at(__FILE__, __LINE__, "cannot write %s", path);
	if (f)
		fclose(f);
}


/* ---- models ---- */

static struct bloom_config small_cfg(void)
{
	return bloom_config_make(64, 16, 2, 4);
}

/* A value for element j of parameter i: distinct across the model, small,
 * not representable exactly in bf16/f16. */
static double pattern(int i, int64_t j)
{
	return 0.05 * sin(0.37 * (double)j + 1.91 * (double)i + 0.1) +
	       1e-4 * (double)i + 3e-7 * (double)j;
}

static void fill_model(struct bloom_model *m)
{
	for (int i = 0; i < m->table.n; i++) {
		struct tensor *t = m->table.items[i].t;
		int64_t n = tensor_numel(t);
		double *v = hug_malloc((size_t)n * sizeof(double));
		for (int64_t j = 0; j < n; j++)
			v[j] = pattern(i, j);
		tensor_write_f64(t, v);
		hug_free(v);
	}
}

static void small_model(struct bloom_model *m)
{
	struct bloom_config c = small_cfg();
	bloom_model_init(m, &c, DT_F32, false);
	fill_model(m);
}

/* The small model in *m, and out = "<a fresh temporary dir>/<sub>" for it. */
static void model_and_dirs(struct bloom_model *m, char *dir, size_t n_dir, char *out,
			   size_t n_out, const char *sub)
{
	tmp_dir(dir, n_dir);
	snprintf(out, n_out, "%s/%s", dir, sub);
	small_model(m);
}

/* Number of parameters whose bytes differ between a and b. */
static int count_diff(const struct bloom_model *a, const struct bloom_model *b)
{
	int bad = 0;
	if (a->table.n != b->table.n)
		return -1;
	for (int i = 0; i < a->table.n; i++) {
		const struct tensor *x = a->table.items[i].t;
		const struct param *p = param_table_find(&b->table, a->table.items[i].name);
		if (!p || !tensor_same_shape(x, p->t) ||
		    memcmp(x->data, p->t->data, tensor_nbytes(x)) != 0)
			bad++;
	}
	return bad;
}

static bool same_config(const struct bloom_config *a, const struct bloom_config *b)
{
	return a->vocab_size == b->vocab_size && a->hidden_size == b->hidden_size &&
	       a->n_layer == b->n_layer && a->n_head == b->n_head &&
	       a->layer_norm_epsilon == b->layer_norm_epsilon &&
	       a->apply_residual_connection_post_layernorm ==
		       b->apply_residual_connection_post_layernorm &&
	       a->hidden_dropout == b->hidden_dropout &&
	       a->attention_dropout == b->attention_dropout &&
	       a->initializer_range == b->initializer_range &&
	       a->bos_token_id == b->bos_token_id && a->eos_token_id == b->eos_token_id &&
	       a->pad_token_id == b->pad_token_id;
}

/* CHECKs that err holds a message containing every given part. */
#define CHECK_MSG(err, ...)                                                    \
	check_msg_at(__FILE__, __LINE__, (err), (const char *[]){ __VA_ARGS__, NULL })

static void check_msg_at(const char *file, int line, const struct hug_error *err,
			 const char **parts)
{
	if (!err->set) {
		test_fail_at(file, line, "expected an error, got none");
		return;
	}
	for (int i = 0; parts[i]; i++)
		if (!strstr(err->msg, parts[i]))
			test_fail_at(file, line, "message \"%s\" lacks \"%s\"", err->msg,
				     parts[i]);
}

/* ---- parameter counts ---- */

TEST(hf_preset_param_counts)
{
	static const struct {
		const char *name;
		int64_t count;
	} want[] = {
		{ "bloom-560m", 559214592LL },	 { "bloom-1b1", 1065314304LL },
		{ "bloom-1b7", 1722408960LL },	 { "bloom-3b", 3002557440LL },
		{ "bloom-7b1", 7069016064LL },	 { "bloom", 176247271424LL },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct bloom_config c;
		REQUIRE(bloom_config_preset(want[i].name, &c) == 0);
		int64_t got = bloom_param_count(&c);
		if (got != want[i].count)
			test_fail_at(__FILE__, __LINE__, "%s: %lld parameters, expected %lld",
				     want[i].name, (long long)got, (long long)want[i].count);
		/* the formula, independently */
		int64_t v = c.vocab_size, h = c.hidden_size, l = c.n_layer;
		CHECK(got == v * h + 4 * h + l * (12 * h * h + 13 * h));
		struct hug_error err = { 0 };
		CHECK(bloom_config_validate(&c, want[i].name, &err) == 0);
	}
	struct bloom_config c;
	CHECK(bloom_config_preset("bloom-9b", &c) == -1);
	/* the model allocates exactly that many */
	struct bloom_model m;
	c = small_cfg();
	bloom_model_init(&m, &c, DT_F32, false);
	CHECK(param_table_numel(&m.table) == bloom_param_count(&c));
	bloom_model_free(&m);
}

/* ---- config.json ---- */

/* Writes `json` as dir/config.json and reads it back. */
static int read_cfg_text(const char *dir, const char *json, struct bloom_config *c,
			 struct hug_error *err)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/config.json", dir);
	write_text(path, json);
	hug_error_clear(err);
	return hf_bloom_config_read(dir, c, err);
}

TEST(hf_config_read_spellings)
{
	char dir[256], path[512];
	struct bloom_config a, b;
	struct hug_error err = { 0 };
	tmp_dir(dir, sizeof(dir));
	CHECK(read_cfg_text(dir, "{\"model_type\": \"bloom\", \"vocab_size\": 64, "
				 "\"hidden_size\": 32, \"n_layer\": 3, \"n_head\": 4}",
			    &a, &err) == 0);
	CHECK(!err.set);
	CHECK(a.vocab_size == 64 && a.hidden_size == 32 && a.n_layer == 3 && a.n_head == 4);
	CHECK(read_cfg_text(dir, "{\"vocab_size\": 64, \"n_embed\": 32, "
				 "\"num_hidden_layers\": 3, \"num_attention_heads\": 4, "
				 "\"n_inner\": null, \"unk_token_id\": 0, "
				 "\"architectures\": [\"BloomForCausalLM\"]}",
			    &b, &err) == 0);
	CHECK(same_config(&a, &b));
	/* both spellings present and agreeing is fine */
	CHECK(read_cfg_text(dir, "{\"vocab_size\": 64, \"n_embed\": 32, \"hidden_size\": 32, "
				 "\"n_layer\": 3, \"num_hidden_layers\": 3, \"n_head\": 4}",
			    &b, &err) == 0);
	CHECK(same_config(&a, &b));
	/* the file path works as well as the directory */
	snprintf(path, sizeof(path), "%s/config.json", dir);
	hug_error_clear(&err);
	CHECK(hf_bloom_config_read(path, &b, &err) == 0);
	CHECK(same_config(&a, &b));
	rm_tree(dir);
}

TEST(hf_config_read_defaults_and_fields)
{
	char dir[256];
	struct bloom_config c;
	struct hug_error err = { 0 };
	tmp_dir(dir, sizeof(dir));
	REQUIRE(read_cfg_text(dir, "{\"vocab_size\": 250880, \"hidden_size\": 1024, "
				   "\"n_layer\": 24, \"n_head\": 16}", &c, &err) == 0);
	struct bloom_config want = bloom_config_make(250880, 1024, 24, 16);
	CHECK(same_config(&c, &want));
	CHECK(c.layer_norm_epsilon == 1e-5 && c.initializer_range == 0.02);
	CHECK(c.bos_token_id == 1 && c.eos_token_id == 2 && c.pad_token_id == 3);
	REQUIRE(read_cfg_text(dir, "{\"vocab_size\": 100, \"hidden_size\": 8, \"n_layer\": 1, "
				   "\"n_head\": 2, \"layer_norm_epsilon\": 1e-6, "
				   "\"apply_residual_connection_post_layernorm\": true, "
				   "\"hidden_dropout\": 0.1, \"attention_dropout\": 0.25, "
				   "\"initializer_range\": 0.01, \"bos_token_id\": 5, "
				   "\"eos_token_id\": 6, \"pad_token_id\": null, "
				   "\"tie_word_embeddings\": true, \"dtype\": \"float16\"}",
			      &c, &err) == 0);
	CHECK(c.layer_norm_epsilon == 1e-6);
	CHECK(c.apply_residual_connection_post_layernorm);
	CHECK(c.hidden_dropout == 0.1 && c.attention_dropout == 0.25);
	CHECK(c.initializer_range == 0.01);
	CHECK(c.bos_token_id == 5 && c.eos_token_id == 6 && c.pad_token_id == -1);
	rm_tree(dir);
}

TEST(hf_config_read_errors)
{
	static const struct {
		const char *json;
		const char *part; /* after "<dir>/config.json: " */
	} cases[] = {
		{ "{\"vocab_size\": 64, \"n_layer\": 2, \"n_head\": 4}",
		  "hidden_size: missing (also looked for n_embed)" },
		{ "{\"vocab_size\": 64, \"hidden_size\": 16, \"n_layer\": 2}",
		  "n_head: missing (also looked for num_attention_heads)" },
		{ "{\"hidden_size\": 16, \"n_layer\": 2, \"n_head\": 4}",
		  "vocab_size: missing" },
		{ "{\"vocab_size\": 64, \"hidden_size\": 16, \"n_layer\": 2, \"n_head\": \"eight\"}",
		  "n_head: expected a positive integer, got \"eight\"" },
		{ "{\"vocab_size\": 64, \"hidden_size\": 16, \"n_layer\": -2, \"n_head\": 4}",
		  "n_layer: expected a positive integer, got -2" },
		{ "{\"vocab_size\": 64, \"n_embed\": 0, \"n_layer\": 2, \"n_head\": 4}",
		  "n_embed: expected a positive integer, got 0" },
		{ "{\"vocab_size\": 64.5, \"hidden_size\": 16, \"n_layer\": 2, \"n_head\": 4}",
		  "vocab_size: expected a positive integer" },
		{ "{\"vocab_size\": 64, \"hidden_size\": 30, \"n_layer\": 2, \"n_head\": 4}",
		  "hidden_size 30 is not divisible by n_head 4" },
		{ "{\"model_type\": \"gpt2\", \"vocab_size\": 64, \"hidden_size\": 16, \"n_layer\": 2, \"n_head\": 4}",
		  "model_type: expected \"bloom\" or \"llama\" or \"qwen2\" or \"qwen3\" or \"mistral\", got \"gpt2\"" },
		{ "{\"vocab_size\": 64, \"hidden_size\": 16, \"n_embed\": 32, \"n_layer\": 2, \"n_head\": 4}",
		  "hidden_size is 16 but n_embed is 32" },
		{ "{\"vocab_size\": 64, \"hidden_size\": 16, \"n_layer\": 2, \"n_head\": 4, \"hidden_dropout\": \"0.1\"}",
		  "hidden_dropout: expected a number, got \"0.1\"" },
		{ "{\"vocab_size\": 64, \"hidden_size\": 16, \"n_layer\": 2, \"n_head\": 4, \"attention_dropout\": 1.5}",
		  "attention_dropout: expected in [0, 1), got 1.5" },
		{ "{\"vocab_size\": 64, \"hidden_size\": 16, \"n_layer\": 2, \"n_head\": 4, \"layer_norm_epsilon\": 0}",
		  "layer_norm_epsilon: expected > 0" },
		{ "{\"vocab_size\": 64, \"hidden_size\": 16, \"n_layer\": 2, \"n_head\": 4, \"apply_residual_connection_post_layernorm\": 1}",
		  "apply_residual_connection_post_layernorm: expected true or false, got 1" },
		{ "{\"vocab_size\": 64, \"hidden_size\": 16, \"n_layer\": 2, \"n_head\": 4, \"pad_token_id\": -5}",
		  "pad_token_id: expected a token id (an integer >= 0) or null, got -5" },
		{ "{\"vocab_size\": 64, \"hidden_size\": 16, \"n_layer\": 2, \"n_head\": 4, \"tie_word_embeddings\": false}",
		  "tie_word_embeddings: false is not supported" },
		{ "{\"vocab_size\": 64, \"hidden_size\": 16, \"n_layer\": 2, \"n_head\": 4, \"n_head\": 8}",
		  "n_head: given twice" },
		{ "{\"vocab_size\": 64, \"hidden_size\": 16, \"n_layer\": 1e10, \"n_head\": 4}",
		  "n_layer: expected a positive integer at most 2147483647, got 10000000000" },
		{ "{ \"vocab_size\": 64,\n  \"hidden_size\": 16,\n  \"n_layer\": }",
		  "not valid JSON (error near line 3" },
		{ "{\"vocab_size\": 64} x", "not valid JSON (text after the value" },
		{ "", "not valid JSON (the file is empty)" },
		{ "[1, 2]", "expected a JSON object, got an array" },
		{ "\"bloom\"", "expected a JSON object, got a string" },
	};
	char dir[256], file[512];
	struct bloom_config c, untouched = bloom_config_make(1, 1, 1, 1);
	tmp_dir(dir, sizeof(dir));
	snprintf(file, sizeof(file), "%s/config.json", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hug_error err = { 0 };
		c = untouched;
		int rc = read_cfg_text(dir, cases[i].json, &c, &err);
		if (rc != -1)
			test_fail_at(__FILE__, __LINE__, "case %zu (%s) was accepted", i,
				     cases[i].json);
		CHECK_MSG(&err, file, cases[i].part);
		CHECK(same_config(&c, &untouched));
	}
	/* missing file, directory without config.json, missing path */
	struct hug_error err = { 0 };
	unlink(file);
	CHECK(hf_bloom_config_read(dir, &c, &err) == -1);
	CHECK_MSG(&err, dir, "no config.json");
	hug_error_clear(&err);
	CHECK(hf_bloom_config_read(file, &c, &err) == -1);
	CHECK_MSG(&err, file, "No such file");
	rm_tree(dir);
}

TEST(hf_config_write_read)
{
	char dir[256], path[600];
	struct hug_error err = { 0 };
	struct bloom_config c = bloom_config_make(100, 32, 3, 4), back;
	c.layer_norm_epsilon = 1e-6;
	c.hidden_dropout = 0.1;
	c.apply_residual_connection_post_layernorm = true;
	c.pad_token_id = -1;
	tmp_dir(dir, sizeof(dir));
	REQUIRE(hf_bloom_config_write(&c, DT_BF16, dir, &err) == 0);
	REQUIRE(hf_bloom_config_read(dir, &back, &err) == 0);
	CHECK(same_config(&c, &back));
	snprintf(path, sizeof(path), "%s/config.json", dir);
	char *text = test_read_file(path, NULL);
	REQUIRE(text);
	hug_json_init();
	cJSON *j = cJSON_Parse(text);
	REQUIRE(j);
	CHECK(strcmp(cJSON_GetObjectItem(j, "model_type")->valuestring, "bloom") == 0);
	CHECK(strcmp(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "architectures"), 0)->valuestring,
		     "BloomForCausalLM") == 0);
	CHECK(strcmp(cJSON_GetObjectItem(j, "torch_dtype")->valuestring, "bfloat16") == 0);
	CHECK(strcmp(cJSON_GetObjectItem(j, "dtype")->valuestring, "bfloat16") == 0);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "tie_word_embeddings")));
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "use_cache")));
	CHECK(cJSON_IsFalse(cJSON_GetObjectItem(j, "slow_but_exact")));
	CHECK(cJSON_GetObjectItem(j, "pretraining_tp")->valueint == 1);
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "pad_token_id")));
	CHECK(cJSON_GetObjectItem(j, "n_layer")->valueint == 3);
	cJSON_Delete(j);
	/* as Python's json.dumps(indent=2, sort_keys=True) lays it out */
	CHECK(strncmp(text, "{\n  \"apply_residual_connection_post_layernorm\": true,\n"
			    "  \"architectures\": [\n    \"BloomForCausalLM\"\n  ],\n"
			    "  \"attention_dropout\": 0.0,\n", 120) == 0);
	CHECK(strstr(text, "\"layer_norm_epsilon\": 1e-06,\n"));
	CHECK(strstr(text, "\"hidden_dropout\": 0.1,\n"));
	hug_free(text);
	snprintf(path, sizeof(path), "%s/generation_config.json", dir);
	text = test_read_file(path, NULL);
	REQUIRE(text);
	j = cJSON_Parse(text);
	REQUIRE(j);
	CHECK(cJSON_GetObjectItem(j, "bos_token_id")->valueint == 1);
	CHECK(cJSON_GetObjectItem(j, "eos_token_id")->valueint == 2);
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "pad_token_id")));
	cJSON_Delete(j);
	hug_free(text);
	/* no temporary files left behind */
	snprintf(path, sizeof(path), "%s/config.json.tmp", dir);
	CHECK(!fs_exists(path));
	hug_error_clear(&err);
	CHECK(hf_bloom_config_write(&c, DT_I32, dir, &err) == -1);
	CHECK_MSG(&err, "not a float type");
	rm_tree(dir);
}

/* ---- round trips ---- */

TEST(hf_round_trip_single_file)
{
	char dir[256], out[300], path[400];
	struct bloom_model a, b;
	struct hug_error err = { 0 };
	model_and_dirs(&a, dir, sizeof(dir), out, sizeof(out), "model");
	a.cfg.pad_token_id = -1;
	REQUIRE(hf_bloom_save(&a, out, DT_F32, 0, &err) == 0);
	snprintf(path, sizeof(path), "%s/model.safetensors", out);
	CHECK(fs_exists(path));
	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", out);
	CHECK(!fs_exists(path));
	snprintf(path, sizeof(path), "%s.tmp", out);
	CHECK(!fs_exists(path));
	REQUIRE(hf_bloom_load(out, DT_F32, false, &b, &err) == 0);
	CHECK(same_config(&a.cfg, &b.cfg));
	CHECK(count_diff(&a, &b) == 0);
	/* no lm_head.weight on disk: transformers ties it */
	struct st_file f;
	snprintf(path, sizeof(path), "%s/model.safetensors", out);
	REQUIRE(st_open(&f, path, &err) == 0);
	CHECK(f.n == a.table.n);
	CHECK(!st_find(&f, "lm_head.weight"));
	CHECK(st_find(&f, "transformer.word_embeddings.weight"));
	CHECK(strcmp(st_meta_get(&f, "format"), "pt") == 0);
	st_close(&f);
	bloom_model_free(&b);
	/* loads into f64 and trainable too */
	REQUIRE(hf_bloom_load(out, DT_F64, true, &b, &err) == 0);
	CHECK(b.dtype == DT_F64 && b.wte->grad);
	double x[16];
	REQUIRE(tensor_numel(b.lnf_b) == 16);
	tensor_read_f64(b.lnf_b, x);
	for (int i = 0; i < 16; i++)
		CHECK(x[i] == (double)((const float *)a.lnf_b->data)[i]);
	bloom_model_free(&b);
	bloom_model_free(&a);
	rm_tree(dir);
}

/* Entries of dir that are shards. */
static int count_shards(const char *dir)
{
	int n = 0;
	char path[600];
	for (int total = 1; total < 64; total++)
		for (int k = 1; k <= total; k++) {
			int len = snprintf(path, sizeof(path), "%s/model-%05d-of-%05d.safetensors",
					   dir, k, total);
			n += len < (int)sizeof(path) && fs_exists(path);
		}
	return n;
}

TEST(hf_round_trip_sharded)
{
	char dir[256], out[300], path[400];
	struct bloom_model a, b;
	struct hug_error err = { 0 };
	model_and_dirs(&a, dir, sizeof(dir), out, sizeof(out), "model");
	/* 30,592 bytes in all; the largest tensor is 4,096 */
	REQUIRE(hf_bloom_save(&a, out, DT_F32, 8192, &err) == 0);
	int n = count_shards(out);
	CHECK(n >= 3);
	snprintf(path, sizeof(path), "%s/model-00001-of-%05d.safetensors", out, n);
	CHECK(fs_exists(path));
	snprintf(path, sizeof(path), "%s/model.safetensors", out);
	CHECK(!fs_exists(path));
	/* each shard within the limit (no tensor is bigger than it) */
	for (int k = 1; k <= n; k++) {
		struct st_file f;
		snprintf(path, sizeof(path), "%s/model-%05d-of-%05d.safetensors", out, k, n);
		REQUIRE(st_open(&f, path, &err) == 0);
		size_t bytes = 0;
		for (int i = 0; i < f.n; i++)
			bytes += f.tensors[i].nbytes;
		CHECK(bytes <= 8192 && f.n > 0);
		st_close(&f);
	}
	/* the index */
	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", out);
	char *text = test_read_file(path, NULL);
	REQUIRE(text);
	hug_json_init();
	cJSON *j = cJSON_Parse(text);
	hug_free(text);
	REQUIRE(j);
	cJSON *meta = cJSON_GetObjectItem(j, "metadata");
	cJSON *map = cJSON_GetObjectItem(j, "weight_map");
	REQUIRE(meta && map);
	CHECK(cJSON_GetObjectItem(meta, "total_size")->valuedouble ==
	      (double)bloom_param_count(&a.cfg) * 4);
	CHECK(cJSON_GetArraySize(map) == a.table.n);
	char first[64];
	snprintf(first, sizeof(first), "model-00001-of-%05d.safetensors", n);
	CHECK(strcmp(cJSON_GetObjectItem(map, "transformer.word_embeddings.weight")->valuestring,
		     first) == 0);
	CHECK(!cJSON_GetObjectItem(map, "lm_head.weight"));
	cJSON_Delete(j);
	REQUIRE(hf_bloom_load(out, DT_F32, false, &b, &err) == 0);
	CHECK(count_diff(&a, &b) == 0);
	bloom_model_free(&b);

	/* saving single over the sharded directory leaves no shard or index */
	REQUIRE(hf_bloom_save(&a, out, DT_F32, 0, &err) == 0);
	CHECK(count_shards(out) == 0);
	CHECK(!fs_exists(path));
	/* and hf_weights_save alone cleans up in both directions */
	REQUIRE(hf_weights_save(&a.table, out, DT_F32, 8192, &err) == 0);
	CHECK(count_shards(out) == n);
	snprintf(path, sizeof(path), "%s/model.safetensors", out);
	CHECK(!fs_exists(path));
	REQUIRE(hf_weights_save(&a.table, out, DT_F32, 12000, &err) == 0);
	CHECK(count_shards(out) >= 3 && count_shards(out) < n);
	REQUIRE(hf_bloom_load(out, DT_F32, false, &b, &err) == 0);
	CHECK(count_diff(&a, &b) == 0);
	bloom_model_free(&b);
	REQUIRE(hf_weights_save(&a.table, out, DT_F32, 0, &err) == 0);
	CHECK(count_shards(out) == 0);
	CHECK(fs_exists(path));
	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", out);
	CHECK(!fs_exists(path));
	bloom_model_free(&a);
	rm_tree(dir);
}

static void check_rounded(struct bloom_model *a, const char *out, enum dtype disk,
			  size_t max_shard)
{
	struct bloom_model b;
	struct hug_error err = { 0 };
	if (hf_bloom_save(a, out, disk, max_shard, &err) ||
	    hf_bloom_load(out, DT_F32, false, &b, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s: %s", dtype_name(disk), err.msg);
		return;
	}
	int64_t bad = 0, changed = 0;
	for (int i = 0; i < a->table.n; i++) {
		const float *x = a->table.items[i].t->data;
		const float *y = b.table.items[i].t->data;
		for (int64_t k = 0; k < tensor_numel(a->table.items[i].t); k++) {
			float want = disk == DT_BF16 ? bf16_to_f32(f32_to_bf16(x[k]))
						     : f16_to_f32(f32_to_f16(x[k]));
			bad += memcmp(&want, &y[k], sizeof(float)) != 0;
			changed += want != x[k];
		}
	}
	if (bad)
		test_fail_at(__FILE__, __LINE__, "%s: %lld values not rounded as expected",
			     dtype_name(disk), (long long)bad);
	CHECK(changed > 0);
	char path[400];
	snprintf(path, sizeof(path), "%s/config.json", out);
	char *text = test_read_file(path, NULL);
	CHECK(text && strstr(text, disk == DT_BF16 ? "\"torch_dtype\": \"bfloat16\""
						   : "\"torch_dtype\": \"float16\""));
	hug_free(text);
	bloom_model_free(&b);
}

TEST(hf_round_trip_bf16_f16)
{
	char dir[256], out[300];
	struct bloom_model a;
	model_and_dirs(&a, dir, sizeof(dir), out, sizeof(out), "model");
	check_rounded(&a, out, DT_BF16, 0);
	check_rounded(&a, out, DT_F16, 0);
	check_rounded(&a, out, DT_BF16, 4096);
	struct hug_error err = { 0 };
	CHECK(hf_weights_save(&a.table, out, DT_I32, 0, &err) == -1);
	CHECK_MSG(&err, "cannot save weights as i32");
	bloom_model_free(&a);
	rm_tree(dir);
}

TEST(hf_save_replaces_directory)
{
	char dir[256], out[300], path[400];
	struct bloom_model a, b;
	struct hug_error err = { 0 };
	model_and_dirs(&a, dir, sizeof(dir), out, sizeof(out), "deeper/model/");
	/* parents are created; a trailing slash is fine */
	REQUIRE(hf_bloom_save(&a, out, DT_F32, 8192, &err) == 0);
	/* a file hug did not write survives a later save */
	snprintf(path, sizeof(path), "%sTOKENIZER.json", out);
	write_text(path, "{}");
	float *w = a.wte->data;
	w[0] = 123.5f;
	REQUIRE(hf_bloom_save(&a, out, DT_F32, 0, &err) == 0);
	CHECK(fs_exists(path));
	CHECK(count_shards(out) == 0);
	snprintf(path, sizeof(path), "%s/deeper/model.tmp", dir);
	CHECK(!fs_exists(path));
	snprintf(path, sizeof(path), "%s/deeper/model.old", dir);
	CHECK(!fs_exists(path));
	REQUIRE(hf_bloom_load(out, DT_F32, false, &b, &err) == 0);
	CHECK(count_diff(&a, &b) == 0);
	CHECK(((float *)b.wte->data)[0] == 123.5f);
	bloom_model_free(&b);
	/* a stale "<dir>.tmp" of hug's own files is cleared first */
	snprintf(path, sizeof(path), "%s/deeper/model.tmp", dir);
	REQUIRE(mkdir(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/deeper/model.tmp/model.safetensors", dir);
	write_text(path, "junk");
	REQUIRE(hf_bloom_save(&a, out, DT_F32, 0, &err) == 0);
	CHECK(!fs_exists(path));
	/* saving over a regular file is refused */
	snprintf(path, sizeof(path), "%s/afile", dir);
	write_text(path, "x");
	hug_error_clear(&err);
	CHECK(hf_bloom_save(&a, path, DT_F32, 0, &err) == -1);
	CHECK_MSG(&err, path, "not a directory");
	bloom_model_free(&a);
	rm_tree(dir);
}

/* ---- weight errors ---- */

/* How to distort the weights written by write_variant. */
enum variant {
	V_MISSING,     /* no transformer.ln_f.bias */
	V_SHAPE,       /* h.0.mlp.dense_h_to_4h.weight transposed */
	V_EXTRA,       /* an extra transformer.h.7... tensor */
	V_UNPREFIXED,  /* every name without "transformer." + lm_head.weight */
	V_MIXED,       /* half prefixed, half not */
	V_DUPLICATE,   /* ln_f.bias both with and without the prefix */
	V_INT,         /* ln_f.bias stored as I32 */
};

static void write_variant(const char *dir, struct bloom_model *m, enum variant v,
			  struct arena *scratch)
{
	struct st_writer *w = st_writer_new();
	char name[256], path[400];
	for (int i = 0; i < m->table.n; i++) {
		const char *n = m->table.items[i].name;
		struct tensor *t = m->table.items[i].t;
		bool strip = v == V_UNPREFIXED || (v == V_MIXED && i % 2);
		snprintf(name, sizeof(name), "%s", strip ? n + strlen("transformer.") : n);
		if (strcmp(n, "transformer.ln_f.bias") == 0) {
			if (v == V_MISSING)
				continue;
			if (v == V_DUPLICATE)
				st_writer_add(w, "ln_f.bias", t, DT_F32);
			if (v == V_INT) {
				struct tensor *q = tensor_zeros(scratch, DT_I32, t->ndim, t->shape);
				st_writer_add(w, name, q, DT_I32);
				continue;
			}
		}
		if (v == V_SHAPE && strcmp(n, "transformer.h.0.mlp.dense_h_to_4h.weight") == 0) {
			struct tensor *q = tensor_zeros(scratch, DT_F32, /* writers refuse NaN */
							TENSOR_SHAPE(t->shape[1], t->shape[0]));
			st_writer_add(w, name, q, DT_F32);
			continue;
		}
		st_writer_add(w, name, t, DT_F32);
	}
	if (v == V_EXTRA)
		st_writer_add(w, "transformer.h.7.mlp.dense_h_to_4h.bias", m->layers[0].fc1_b,
			      DT_F32);
	if (v == V_UNPREFIXED)
		st_writer_add(w, "lm_head.weight", m->wte, DT_F32);
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	struct hug_error err = { 0 };
	if (st_writer_write(w, path, &err))
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	st_writer_free(w);
}

TEST(hf_weights_load_errors)
{
	char dir[256], path[400];
	struct bloom_model a, b;
	struct hug_error err = { 0 };
	struct arena scratch;
	arena_init(&scratch, "scratch", 0, NULL);
	tmp_dir(dir, sizeof(dir));
	small_model(&a);
	REQUIRE(hf_bloom_config_write(&a.cfg, DT_F32, dir, &err) == 0);
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	static const struct {
		enum variant v;
		const char *part1, *part2;
	} cases[] = {
		{ V_MISSING, ": missing tensor transformer.ln_f.bias (looked in model.safetensors)", NULL },
		{ V_SHAPE, "model.safetensors: transformer.h.0.mlp.dense_h_to_4h.weight: shape [16, 64], expected [64, 16]", NULL },
		{ V_EXTRA, "model.safetensors: unexpected tensor transformer.h.7.mlp.dense_h_to_4h.bias", NULL },
		{ V_DUPLICATE, "tensor transformer.ln_f.bias given twice", "as ln_f.bias in model.safetensors" },
		{ V_INT, "model.safetensors: transformer.ln_f.bias: dtype I32, expected a float dtype", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_variant(dir, &a, cases[i].v, &scratch);
		bloom_model_init(&b, &a.cfg, DT_F32, false);
		tensor_fill(b.lnf_w, 7.0);
		hug_error_clear(&err);
		CHECK(hf_weights_load(&b.table, &bloom_family.hf_names, bloom_family.display, dir, &err) == -1);
		CHECK_MSG(&err, dir, cases[i].part1);
		if (cases[i].part2)
			CHECK_MSG(&err, cases[i].part2);
		/* nothing was copied before the error was found */
		double x[16];
		REQUIRE(tensor_numel(b.lnf_w) == 16);
		tensor_read_f64(b.lnf_w, x);
		CHECK(x[0] == 7.0 && x[15] == 7.0);
		bloom_model_free(&b);
		/* hf_bloom_load leaves the model freed */
		hug_error_clear(&err);
		CHECK(hf_bloom_load(dir, DT_F32, false, &b, &err) == -1);
		CHECK(b.table.n == 0 && b.layers == NULL);
	}
	/* unprefixed names (BloomModel's) and a tied lm_head load; so do
	 * names mixing both */
	enum variant ok[] = { V_UNPREFIXED, V_MIXED };
	for (int i = 0; i < 2; i++) {
		write_variant(dir, &a, ok[i], &scratch);
		hug_error_clear(&err);
		if (hf_bloom_load(dir, DT_F32, false, &b, &err)) {
			test_fail_at(__FILE__, __LINE__, "variant %d: %s", (int)ok[i], err.msg);
			continue;
		}
		CHECK(count_diff(&a, &b) == 0);
		bloom_model_free(&b);
	}
	/* a truncated file */
	write_variant(dir, &a, V_MIXED, &scratch);
	struct stat st;
	REQUIRE(stat(path, &st) == 0);
	REQUIRE(truncate(path, st.st_size - 100) == 0);
	hug_error_clear(&err);
	CHECK(hf_bloom_load(dir, DT_F32, false, &b, &err) == -1);
	CHECK_MSG(&err, path);
	REQUIRE(truncate(path, 5) == 0);
	hug_error_clear(&err);
	CHECK(hf_bloom_load(dir, DT_F32, false, &b, &err) == -1);
	CHECK_MSG(&err, path, "truncated");
	/* no weights at all */
	unlink(path);
	hug_error_clear(&err);
	CHECK(hf_bloom_load(dir, DT_F32, false, &b, &err) == -1);
	CHECK_MSG(&err, dir, "no weights", "model.safetensors.index.json");
	/* not a directory */
	hug_error_clear(&err);
	snprintf(path, sizeof(path), "%s/nothere", dir);
	CHECK(hf_bloom_load(path, DT_F32, false, &b, &err) == -1);
	CHECK_MSG(&err, path, "no such directory");
	bloom_model_free(&a);
	arena_free(&scratch);
	rm_tree(dir);
}

/* Writes dir/model.safetensors.index.json. */
static void write_index(const char *dir, const char *json)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
	write_text(path, json);
}

TEST(hf_weights_index_errors)
{
	char dir[256], out[300], path[400], index[400];
	struct bloom_model a, b;
	struct hug_error err = { 0 };
	model_and_dirs(&a, dir, sizeof(dir), out, sizeof(out), "model");
	snprintf(index, sizeof(index), "%s/model.safetensors.index.json", out);
	REQUIRE(hf_bloom_save(&a, out, DT_F32, 8192, &err) == 0);
	int n = count_shards(out);
	REQUIRE(n >= 3);
	char *good = test_read_file(index, NULL);
	REQUIRE(good);

	/* a shard that is missing */
	snprintf(path, sizeof(path), "%s/model-00002-of-%05d.safetensors", out, n);
	char moved[420];
	snprintf(moved, sizeof(moved), "%s.away", path);
	REQUIRE(rename(path, moved) == 0);
	CHECK(hf_bloom_load(out, DT_F32, false, &b, &err) == -1);
	char part[100];
	snprintf(part, sizeof(part), "shard model-00002-of-%05d.safetensors (holding ", n);
	CHECK_MSG(&err, index, part, "does not exist");
	REQUIRE(rename(moved, path) == 0);

	/* shard names that leave the directory */
	static const char *const evil[] = {
		"{\"weight_map\": {\"transformer.ln_f.bias\": \"../evil.safetensors\"}}",
		"{\"weight_map\": {\"transformer.ln_f.bias\": \"/etc/passwd\"}}",
		"{\"weight_map\": {\"transformer.ln_f.bias\": \"sub\\\\x.safetensors\"}}",
		"{\"weight_map\": {\"transformer.ln_f.bias\": \"..\"}}",
		"{\"weight_map\": {\"transformer.ln_f.bias\": \"\"}}",
	};
	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		write_index(out, evil[i]);
		hug_error_clear(&err);
		CHECK(hf_bloom_load(out, DT_F32, false, &b, &err) == -1);
		CHECK_MSG(&err, index, "weight_map: transformer.ln_f.bias: shard", "must be a file name");
	}
	static const struct {
		const char *json, *part;
	} bad[] = {
		{ "{\"metadata\": {}}", "weight_map: missing" },
		{ "{\"weight_map\": []}", "weight_map: expected an object, got an array" },
		{ "{\"weight_map\": {}}", "weight_map: empty" },
		{ "{\"weight_map\": {\"transformer.ln_f.bias\": 3}}",
		  "weight_map: transformer.ln_f.bias: expected a shard file name, got 3" },
		{ "{\"metadata\": {\"total_size\": \"big\"}, \"weight_map\": {\"a\": \"b\"}}",
		  "metadata.total_size: expected an integer >= 0, got \"big\"" },
		{ "{\"weight_map\": {\"a\": \"x.safetensors\", \"a\": \"x.safetensors\"}}",
		  "weight_map: tensor a listed twice" },
		{ "not json", "not valid JSON" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_index(out, bad[i].json);
		hug_error_clear(&err);
		CHECK(hf_bloom_load(out, DT_F32, false, &b, &err) == -1);
		CHECK_MSG(&err, index, bad[i].part);
	}
	/* an index claiming a tensor for the wrong shard */
	char *wrong = hug_strdup(good);
	char *at = strstr(wrong, "\"transformer.ln_f.bias\": \"model-0000");
	REQUIRE(at);
	at += strlen("\"transformer.ln_f.bias\": \"model-0000");
	*at = *at == '1' ? '2' : '1';
	write_index(out, wrong);
	hug_free(wrong);
	hug_error_clear(&err);
	CHECK(hf_bloom_load(out, DT_F32, false, &b, &err) == -1);
	CHECK_MSG(&err, "weight_map says transformer.ln_f.bias is in", "does not hold it");
	/* the good index loads again */
	write_index(out, good);
	hug_error_clear(&err);
	REQUIRE(hf_bloom_load(out, DT_F32, false, &b, &err) == 0);
	CHECK(count_diff(&a, &b) == 0);
	bloom_model_free(&b);
	/* a shard that is truncated */
	snprintf(path, sizeof(path), "%s/model-%05d-of-%05d.safetensors", out, n, n);
	REQUIRE(truncate(path, 64) == 0);
	hug_error_clear(&err);
	CHECK(hf_bloom_load(out, DT_F32, false, &b, &err) == -1);
	CHECK_MSG(&err, path);
	hug_free(good);
	bloom_model_free(&a);
	rm_tree(dir);
}

/* ---- hug info as a subprocess ---- */

/* Runs $HUG_BIN with args, capturing stdout and stderr (hug_malloc'd);
 * returns the exit status, or -1 when it did not exit normally. */
static int run_hug(const char *const *args, const char *tmp, char **out, char **errs)
{
	const char *bin = getenv("HUG_BIN");
	char op[400], ep[400];
	const char *argv[16];
	int n = 0;
	argv[n++] = bin;
	for (int i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	snprintf(op, sizeof(op), "%s/stdout.txt", tmp);
	snprintf(ep, sizeof(ep), "%s/stderr.txt", tmp);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int o = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (o < 0 || e < 0)
			_exit(127);
		dup2(o, 1);
		dup2(e, 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	*out = test_read_file(op, NULL);
	*errs = test_read_file(ep, NULL);
	if (!*out)
		*out = hug_strdup("");
	if (!*errs)
		*errs = hug_strdup("");
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs hug and checks the exit code and that `stream` holds `part`. */
#define CHECK_HUG(want_rc, stream_is_err, part, ...)                           \
	check_hug_at(__FILE__, __LINE__, tmp, (const char *[]){ __VA_ARGS__, NULL }, \
		     (want_rc), (stream_is_err), (part))

static void check_hug_at(const char *file, int line, const char *tmp,
			 const char *const *args, int want_rc, bool in_err,
			 const char *part)
{
	char *out = NULL, *errs = NULL;
	int rc = run_hug(args, tmp, &out, &errs);
	const char *s = in_err ? errs : out;
	if (rc != want_rc)
		test_fail_at(file, line, "hug %s %s: exit %d, expected %d; stderr: %s",
			     args[0], args[1] ? args[1] : "", rc, want_rc, errs ? errs : "");
	else if (!s || !strstr(s, part))
		test_fail_at(file, line, "hug %s %s: %s lacks \"%s\":\n%s", args[0],
			     args[1] ? args[1] : "", in_err ? "stderr" : "stdout", part,
			     s ? s : "");
	if (in_err && s && strncmp(s, "hug info: ", 10) != 0)
		test_fail_at(file, line, "stderr does not start with \"hug info: \": %s", s);
	hug_free(out);
	hug_free(errs);
}

TEST(hf_info_cli)
{
	const char *bin = getenv("HUG_BIN");
	if (!bin || !*bin)
		SKIP("HUG_BIN is not set (make test sets it)");
	char tmp[256], out[300], sharded[300], st[400], bad[300], cfgp[400], msg[400];
	struct bloom_model a;
	struct hug_error err = { 0 };
	tmp_dir(tmp, sizeof(tmp));
	snprintf(out, sizeof(out), "%s/model", tmp);
	snprintf(sharded, sizeof(sharded), "%s/sharded", tmp);
	snprintf(st, sizeof(st), "%s/model.safetensors", out);
	snprintf(cfgp, sizeof(cfgp), "%s/config.json", out);
	small_model(&a);
	REQUIRE(hf_bloom_save(&a, out, DT_F32, 0, &err) == 0);
	REQUIRE(hf_bloom_save(&a, sharded, DT_BF16, 4096, &err) == 0);

	CHECK_HUG(0, false, "parameters: 7,648", "info", out);
	CHECK_HUG(0, false, "7,648 elements in F32, matching the config", "info", out);
	CHECK_HUG(0, false, "n_head                                     4", "info", out);
	CHECK_HUG(0, false, "transformer.ln_f.bias", "info", out, "--tensors");
	CHECK_HUG(0, false, "parameters: 7,648", "info", cfgp);
	CHECK_HUG(0, false, "model-00001-of-0000", "info", sharded);
	CHECK_HUG(0, false, "matching the config", "info", sharded);
	CHECK_HUG(0, false, "[64, 16]", "info", st);
	CHECK_HUG(0, false, "559,214,592", "info", "--preset", "bloom-560m");
	CHECK_HUG(0, false, "176,247,271,424", "info", "--preset=bloom");
	CHECK_HUG(0, false, "usage: hug info", "info", "--help");

	/* bad input: exit 2 and a message naming the thing */
	snprintf(bad, sizeof(bad), "%s/empty", tmp);
	REQUIRE(mkdir(bad, 0755) == 0);
	snprintf(msg, sizeof(msg), "hug info: %s: no config.json", bad);
	CHECK_HUG(2, true, msg, "info", bad);
	snprintf(bad, sizeof(bad), "%s/nothere", tmp);
	CHECK_HUG(2, true, "No such file", "info", bad);
	CHECK_HUG(2, true, "unknown preset \"bloom-9b\"", "info", "--preset", "bloom-9b");
	CHECK_HUG(2, true, "unknown option \"--frobnicate\"", "info", out, "--frobnicate");
	CHECK_HUG(2, true, "expected a PATH", "info");
	CHECK_HUG(2, true, "not both", "info", out, "--preset", "bloom");
	/* a broken config and a broken weight file */
	write_text(cfgp, "{\"vocab_size\": 64, \"hidden_size\": 16, \"n_layer\": 2, \"n_head\": \"eight\"}");
	CHECK_HUG(2, true, "n_head: expected a positive integer, got \"eight\"", "info", out);
	REQUIRE(truncate(st, 40) == 0);
	CHECK_HUG(2, true, st, "info", st);
	bloom_model_free(&a);
	rm_tree(tmp);
}

/* ---- for tools/ref/check_hf_load.py ---- */

/* With HUG_HF_OUT=DIR: saves a small model to DIR/single (f32), DIR/sharded
 * (f32, >= 3 shards) and DIR/bf16, and hug's own logits for the input
 * check_hf_load.py uses to DIR/hug_logits.safetensors. */
TEST(hf_save_for_python)
{
	const char *outdir = getenv("HUG_HF_OUT");
	if (!outdir || !*outdir)
		SKIP("set HUG_HF_OUT=DIR to write directories for tools/ref/check_hf_load.py");
	struct bloom_config c = bloom_config_make(256, 32, 2, 4);
	struct bloom_model m;
	struct hug_error err = { 0 };
	char path[600];
	bloom_model_init(&m, &c, DT_F32, false);
	bloom_model_init_weights(&m, 1234);
	/* make biases and LayerNorm parameters non-trivial too */
	for (int i = 0; i < m.table.n; i++) {
		struct tensor *t = m.table.items[i].t;
		const char *n = m.table.items[i].name;
		if (!strstr(n, ".bias") && !strstr(n, "layernorm") && !strstr(n, "ln_f"))
			continue;
		float *d = t->data;
		for (int64_t j = 0; j < tensor_numel(t); j++)
			d[j] += (float)(0.05 * sin(0.7 * (double)j + (double)i));
	}
	mkdir(outdir, 0755);
	snprintf(path, sizeof(path), "%s/single", outdir);
	REQUIRE(hf_bloom_save(&m, path, DT_F32, 0, &err) == 0);
	snprintf(path, sizeof(path), "%s/sharded", outdir);
	REQUIRE(hf_bloom_save(&m, path, DT_F32, 40000, &err) == 0);
	CHECK(count_shards(path) >= 3);
	snprintf(path, sizeof(path), "%s/bf16", outdir);
	REQUIRE(hf_bloom_save(&m, path, DT_BF16, 0, &err) == 0);

	/* the fixed input of check_hf_load.py */
	static const int32_t ids[2][8] = {
		{ 1, 17, 42, 99, 3, 200, 7, 255 },
		{ 5, 0, 128, 64, 33, 2, 250, 11 },
	};
	struct arena in, step;
	struct ag_ctx ctx;
	arena_init(&in, "inputs", 0, NULL);
	arena_init(&step, "step", 0, NULL);
	ag_ctx_init(&ctx, &step);
	ctx.training = false;
	ag_set_grad_enabled(&ctx, false);
	struct tensor *t = tensor_new(&in, DT_I32, TENSOR_SHAPE(2, 8));
	memcpy(t->data, ids, sizeof(ids));
	struct tensor *logits = bloom_forward(&ctx, &m, t, NULL);
	if (!logits) {
		test_fail_at(__FILE__, __LINE__, "forward: %s", ctx.err.msg);
	} else {
		struct st_writer *w = st_writer_new();
		st_writer_add(w, "logits", logits, DT_F32);
		st_writer_add(w, "input_ids", t, DT_I32);
		snprintf(path, sizeof(path), "%s/hug_logits.safetensors", outdir);
		CHECK(st_writer_write(w, path, &err) == 0);
		st_writer_free(w);
	}
	ag_ctx_reset(&ctx);
	arena_free(&step);
	arena_free(&in);
	bloom_model_free(&m);
}
