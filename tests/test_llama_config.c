/* test_llama_config.c: the configuration side of the Llama-style families
 * (llama, qwen2, qwen3, mistral; nn/llama_config.c, nn/rope.c,
 * nn/llama_family.c): config.json in both rope spellings read the same,
 * the config written back is transformers' text for the class, the
 * published presets' parameter counts (through `hug info` too), floats
 * laid out as Python writes them, refusals that name the file and the key,
 * and the family tables' LoRA defaults and linear lists. The model's
 * numerics are in tests/test_llama_family.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/json.h"
#include "../io/hf_checkpoint.h"
#include "../nn/llama.h"
#include "../peft/lora_model.h"
#include "harness.h"
#include "train_fixture.h"

static const char *const fixtures[] = {
	"tests/fixtures/llama-tiny-a", "tests/fixtures/llama-tiny-b", "tests/fixtures/qwen2-tiny",
	"tests/fixtures/qwen3-tiny", "tests/fixtures/mistral-tiny",
};
#define N_FIXTURES ((int)(sizeof(fixtures) / sizeof(fixtures[0])))

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static char *make_tmpdir(void)
{
	char *d = hug_strdup("/tmp/hug-llama-XXXXXX");
	return mkdtemp(d) ? d : NULL;
}

static bool same_config(const struct llama_config *a, const struct llama_config *b)
{
	return a->variant == b->variant && a->vocab_size == b->vocab_size &&
	       a->hidden_size == b->hidden_size && a->intermediate_size == b->intermediate_size &&
	       a->n_layer == b->n_layer && a->n_head == b->n_head &&
	       a->n_kv_head == b->n_kv_head && a->head_dim == b->head_dim &&
	       a->max_position_embeddings == b->max_position_embeddings &&
	       a->rms_norm_eps == b->rms_norm_eps &&
	       a->initializer_range == b->initializer_range &&
	       a->attention_dropout == b->attention_dropout &&
	       a->tie_word_embeddings == b->tie_word_embeddings &&
	       a->attention_bias == b->attention_bias && a->mlp_bias == b->mlp_bias &&
	       a->rope.type == b->rope.type && a->rope.theta == b->rope.theta &&
	       (a->rope.type == ROPE_DEFAULT || a->rope.factor == b->rope.factor) &&
	       a->rope.low_freq_factor == b->rope.low_freq_factor &&
	       a->rope.high_freq_factor == b->rope.high_freq_factor &&
	       a->rope.original_max_position_embeddings ==
		       b->rope.original_max_position_embeddings &&
	       a->sliding_window == b->sliding_window &&
	       a->bos_token_id == b->bos_token_id && a->eos_token_id == b->eos_token_id &&
	       a->pad_token_id == b->pad_token_id;
}

/* Removes the line of text holding `key` (in place). */
static void drop_line(char *text, const char *key)
{
	char *k = strstr(text, key);
	if (!k)
		return;
	char *start = k, *end = strchr(k, '\n');
	while (start > text && start[-1] != '\n')
		start--;
	memmove(start, end ? end + 1 : k + strlen(k), strlen(end ? end + 1 : k + strlen(k)) + 1);
}

/* Both spellings read the same; the config written back holds every key
 * of transformers' config.json with its value (transformers_version
 * aside), and reads back equal. */
TEST(llama_config_spellings_and_round_trip)
{
	for (int f = 0; f < N_FIXTURES; f++) {
		struct hug_error err = { 0 };
		struct model_config a, b, c;
		char path[512];
		const char *dir = fixtures[f];
		REQUIRE(model_config_read(dir, &a, &err) == 0);
		snprintf(path, sizeof(path), "%s/config.published.json", dir);
		if (model_config_read(path, &b, &err))
			test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		else
			CHECK(b.family == a.family &&
			      same_config(llama_config_of(&a), llama_config_of(&b)));
		char *tmp = make_tmpdir();
		REQUIRE(tmp);
		REQUIRE(model_config_write(&a, DT_F32, tmp, &err) == 0);
		REQUIRE(model_config_read(tmp, &c, &err) == 0);
		CHECK(c.family == a.family && same_config(llama_config_of(&a), llama_config_of(&c)));
		cJSON *want, *got;
		snprintf(path, sizeof(path), "%s/config.json", dir);
		REQUIRE(hug_json_read_object(path, 1 << 20, NULL, &want, &err) == 0);
		snprintf(path, sizeof(path), "%s/config.json", tmp);
		REQUIRE(hug_json_read_object(path, 1 << 20, NULL, &got, &err) == 0);
		for (cJSON *it = want->child; it; it = it->next) {
			if (!strcmp(it->string, "transformers_version"))
				continue;
			cJSON *g = cJSON_GetObjectItemCaseSensitive(got, it->string);
			if (!g || !cJSON_Compare(it, g, true))
				test_fail_at(__FILE__, __LINE__, "%s: written config.json: %s %s",
					     base_name(dir), it->string,
					     g ? "differs" : "missing");
		}
		cJSON_Delete(want);
		cJSON_Delete(got);
		/* and the text itself: transformers' layout, number by number
		 * (without transformers_version, which hug does not write, and
		 * torch_dtype, which it adds for transformers 4) */
		snprintf(path, sizeof(path), "%s/config.json", dir);
		char *wt = test_read_file(path, NULL);
		snprintf(path, sizeof(path), "%s/config.json", tmp);
		char *gt = test_read_file(path, NULL);
		REQUIRE(wt && gt);
		drop_line(wt, "\"transformers_version\"");
		drop_line(gt, "\"torch_dtype\"");
		if (strcmp(wt, gt))
			test_fail_at(__FILE__, __LINE__, "%s: config.json as hug writes it:\n%s\n"
				     "as transformers writes it:\n%s", base_name(dir), gt, wt);
		hug_free(wt);
		hug_free(gt);
		train_fixture_rmtree(tmp);
		hug_free(tmp);
	}
}

TEST(llama_preset_parameter_counts)
{
	static const struct {
		const char *name, *family;
		int64_t params;
	} want[] = {
		{ "llama-3.2-1b", "llama", 1235814400 },  { "llama-3.1-8b", "llama", 8030261248 },
		{ "smollm2-135m", "llama", 134515008 },   { "qwen2.5-0.5b", "qwen2", 494032768 },
		{ "qwen2.5-7b", "qwen2", 7615616512 },    { "qwen3-0.6b", "qwen3", 596049920 },
		{ "qwen3-8b", "qwen3", 8190735360 },      { "mistral-7b", "mistral", 7241732096 },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct model_config c;
		struct hug_error err = { 0 };
		REQUIRE(model_config_preset(want[i].name, &c) == 0);
		CHECK(!strcmp(c.family->name, want[i].family));
		CHECK(model_config_validate(&c, want[i].name, &err) == 0);
		if (model_config_param_count(&c) != want[i].params)
			test_fail_at(__FILE__, __LINE__, "%s: %lld parameters, want %lld",
				     want[i].name, (long long)model_config_param_count(&c),
				     (long long)want[i].params);
	}
	/* and through the CLI */
	char out[4096];
	const char *bin = getenv("HUG_BIN") ? getenv("HUG_BIN") : "build/bin/hug";
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "%s info --preset qwen2.5-0.5b", bin);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	CHECK(strstr(out, "494,032,768") != NULL);
}

/* config.json in tmp from `json`; model_config_read's result. */
static int read_json(const char *json, struct model_config *c, struct hug_error *err)
{
	char *tmp = make_tmpdir(), path[512];
	snprintf(path, sizeof(path), "%s/config.json", tmp);
	test_write_file(path, json);
	hug_error_clear(err);
	int rc = model_config_read(path, c, err);
	train_fixture_rmtree(tmp);
	hug_free(tmp);
	return rc;
}

TEST(llama_config_refusals_name_file_and_key)
{
	struct model_config c;
	struct hug_error err = { 0 };
	const char *base = "{\"model_type\": \"%s\", \"vocab_size\": 100, \"hidden_size\": 32, "
			   "\"num_hidden_layers\": 2, \"num_attention_heads\": 4%s}";
	char j[1024];
	snprintf(j, sizeof(j), base, "llama", ", \"rope_scaling\": {\"rope_type\": \"yarn\", "
		 "\"factor\": 4.0}");
	CHECK(read_json(j, &c, &err) == -1);
	CHECK(strstr(err.msg, "config.json: rope_scaling.rope_type") && strstr(err.msg, "yarn") &&
	      strstr(err.msg, "llama3"));
	snprintf(j, sizeof(j), base, "qwen2", ", \"use_sliding_window\": true");
	CHECK(read_json(j, &c, &err) == -1);
	CHECK(strstr(err.msg, "config.json: use_sliding_window"));
	snprintf(j, sizeof(j), base, "mistral", ", \"num_key_value_heads\": 3");
	CHECK(read_json(j, &c, &err) == -1);
	CHECK(strstr(err.msg, "config.json: num_key_value_heads"));
	snprintf(j, sizeof(j), base, "llama", ", \"hidden_act\": \"gelu\"");
	CHECK(read_json(j, &c, &err) == -1);
	CHECK(strstr(err.msg, "config.json: hidden_act"));
	snprintf(j, sizeof(j), base, "llama", ", \"rope_scaling\": {\"rope_type\": \"llama3\", "
		 "\"factor\": 8.0}");
	CHECK(read_json(j, &c, &err) == -1);
	CHECK(strstr(err.msg, "config.json: rope_scaling.low_freq_factor"));
	snprintf(j, sizeof(j), base, "llama", ", \"rope_parameters\": {\"rope_type\": \"default\", "
		 "\"rope_theta\": 10000.0, \"partial_rotary_factor\": 0.5}");
	CHECK(read_json(j, &c, &err) == -1);
	CHECK(strstr(err.msg, "config.json: rope_parameters.partial_rotary_factor"));
	/* Llama 3.1 Instruct's list of eos ids: all kept (generation stops on
	 * any), written back as a list */
	snprintf(j, sizeof(j), base, "llama", ", \"eos_token_id\": [128001, 128008, 128009]");
	REQUIRE(read_json(j, &c, &err) == 0);
	CHECK(c.dims.eos_token_id == 128001 && c.dims.n_kv_head == 4 && c.dims.head_dim == 8);
	CHECK(c.dims.n_eos_more == 2 && c.dims.eos_more[0] == 128008 &&
	      c.dims.eos_more[1] == 128009);
	{
		char *tmp = make_tmpdir(), path[512], *text = NULL;
		REQUIRE(tmp && model_config_write(&c, DT_BF16, tmp, &err) == 0);
		for (int k = 0; k < 2; k++) {
			snprintf(path, sizeof(path), "%s/%s", tmp,
				 k ? "generation_config.json" : "config.json");
			REQUIRE(fs_read_file(path, 1 << 20, &text, NULL, &err) == 0);
			CHECK(strstr(text, "\"eos_token_id\": [\n    128001,\n    128008,\n    "
					   "128009\n  ]") != NULL);
			hug_free(text);
		}
		struct model_config back;
		REQUIRE(model_config_read(tmp, &back, &err) == 0);
		CHECK(back.dims.n_eos_more == 2 && back.dims.eos_more[1] == 128009);
		train_fixture_rmtree(tmp);
		hug_free(tmp);
	}
	snprintf(j, sizeof(j), base, "llama", ", \"eos_token_id\": [1, 2, 3, 4, 5, 6, 7]");
	CHECK(read_json(j, &c, &err) == -1);
	CHECK(strstr(err.msg, "config.json: eos_token_id") && strstr(err.msg, "1 to 6"));
	snprintf(j, sizeof(j), base, "llama", ", \"eos_token_id\": [2, \"x\"]");
	CHECK(read_json(j, &c, &err) == -1);
	CHECK(strstr(err.msg, "config.json: eos_token_id"));
	snprintf(j, sizeof(j), base, "llama", ", \"eos_token_id\": []");
	CHECK(read_json(j, &c, &err) == -1);
	/* legacy "type" inside rope_scaling */
	snprintf(j, sizeof(j), base, "llama", ", \"rope_scaling\": {\"type\": \"linear\", "
		 "\"factor\": 2.0}");
	REQUIRE(read_json(j, &c, &err) == 0);
	CHECK(llama_config_of(&c)->rope.type == ROPE_LINEAR);
	/* tensor parallelism: key/value heads split (14 q / 2 kv at tp 2),
	 * replicated (32 q / 8 kv at tp 16 and 32), else refused */
	REQUIRE(model_config_preset("qwen2.5-0.5b", &c) == 0);
	CHECK(model_config_tp_validate(&c, 2, &err) == 0);
	CHECK(model_config_tp_validate(&c, 4, &err) == -1 && strstr(err.msg, "num_attention_heads"));
	CHECK(model_config_tp_validate(&c, 7, &err) == -1 && strstr(err.msg, "num_key_value_heads"));
	REQUIRE(model_config_preset("llama-3.2-1b", &c) == 0);
	CHECK(model_config_tp_validate(&c, 8, &err) == 0);
	CHECK(model_config_tp_validate(&c, 16, &err) == 0);
	CHECK(model_config_tp_validate(&c, 32, &err) == 0);
	CHECK(model_config_tp_validate(&c, 12, &err) == -1);
}

/* PEFT's default LoRA targets per family (q_proj and v_proj), the PEFT
 * module names, and "all-linear" through the family's linear list. */
TEST(llama_lora_default_targets_and_all_linear)
{
	struct model_config c;
	struct hug_error err = { 0 };
	const char *const fams[] = { "llama", "qwen2", "qwen3", "mistral" };
	for (int i = 0; i < 4; i++) {
		const struct model_family *f = model_family_find(fams[i]);
		REQUIRE(f && f->lora_targets);
		CHECK(!strcmp(f->lora_targets[0], "q_proj") && !strcmp(f->lora_targets[1], "v_proj") &&
		      !f->lora_targets[2]);
		CHECK(f->n_linear == 7 && !strcmp(f->linears[3].module, "o_proj") &&
		      !strcmp(f->linears[6].path, "mlp.down_proj"));
	}
	REQUIRE(model_config_read("tests/fixtures/qwen3-tiny", &c, &err) == 0);
	struct model_linear lin;
	model_config_linear(&c, 1, LLAMA_K, &lin);
	CHECK(!strcmp(lin.path, "model.layers.1.self_attn.k_proj") && lin.in == 32 &&
	      lin.out == 2 * 12 && lin.split == MODEL_SPLIT_COLUMN);
	model_config_linear(&c, 0, LLAMA_O, &lin);
	CHECK(lin.in == 4 * 12 && lin.out == 32 && lin.split == MODEL_SPLIT_ROW);
	/* every linear of a model is a registered parameter of that shape */
	struct model m = { 0 };
	REQUIRE(hf_model_load("tests/fixtures/qwen3-tiny", DT_F32, false, &m, &err) == 0);
	for (int l = 0; l < 2; l++)
		for (int k = 0; k < LLAMA_N_LINEAR; k++) {
			char name[PARAM_NAME_MAX + 8];
			model_linear(&m, l, k, &lin);
			snprintf(name, sizeof(name), "%s.weight", lin.path);
			struct param *p = param_table_find(model_params(&m), name);
			CHECK(p && p->t == lin.weight && lin.weight->shape[0] == lin.out &&
			      lin.weight->shape[1] == lin.in && lin.adapter && !*lin.adapter);
		}
	/* a LoRA config without targets takes the family's default */
	struct lora_config lc;
	struct lora_model lm;
	lora_config_init(&lc);
	REQUIRE(lora_model_init(&lm, &m, &lc, true, "", &err) == 0);
	CHECK(lm.n == 2 * 2 && lm.cfg.n_targets == 2 && !strcmp(lm.cfg.targets[0], "q_proj") &&
	      !strcmp(lm.cfg.targets[1], "v_proj"));
	lora_model_free(&lm);
	lora_config_set_targets(&lc, (const char *[]){ "all-linear" }, 1);
	REQUIRE(lora_model_init(&lm, &m, &lc, true, "", &err) == 0);
	CHECK(lm.n == 2 * LLAMA_N_LINEAR);
	lora_model_free(&lm);
	lora_config_free(&lc);
	model_free(&m);
}

/* Floats in config.json as Python's json.dumps writes them (rope_theta
 * 1000000.0, not 1e+06). */
TEST(llama_config_floats_as_python_writes_them)
{
	static const struct {
		double v;
		const char *py;
	} cases[] = {
		{ 0.0, "0.0" },           { 1e-05, "1e-05" },     { 1e-06, "1e-06" },
		{ 0.02, "0.02" },         { 0.0001, "0.0001" },   { 1000000.0, "1000000.0" },
		{ 500000.0, "500000.0" }, { 10000.0, "10000.0" }, { 1e16, "1e+16" },
		{ 123.456, "123.456" },   { -2.5, "-2.5" },       { 1.5e-07, "1.5e-07" },
		{ 8.0, "8.0" },           { 9999999999999998.0, "9999999999999998.0" },
		{ 0.1, "0.1" },           { 1.0 / 3.0, "0.3333333333333333" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[64];
		hug_json_double(cases[i].v, buf, sizeof(buf));
		if (strcmp(buf, cases[i].py))
			test_fail_at(__FILE__, __LINE__, "%.17g: got %s, Python writes %s", cases[i].v,
				     buf, cases[i].py);
	}
}
