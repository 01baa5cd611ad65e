/* test_model_interface.c: the model interface (nn/model.h): the family is
 * chosen by recipe model.arch and by config.json's model_type /
 * architectures, unknown ones are errors naming the file, the key and the
 * known families; BLOOM's list of linear layers agrees with its parameters
 * (shapes, tensor-parallel splits, shard specs, adapter hooks); and the
 * layers above nn/ never name a family (scripts/check-model-interface.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../io/hf_checkpoint.h"
#include "../nn/bloom.h"
#include "../train/recipe.h"
#include "harness.h"

/* A recipe for a small model from scratch with `arch_json` in "model"
 * (e.g. "\"arch\": \"bloom\", "), parsed as "r.json". */
static int parse_arch(const char *arch_json, struct recipe *r, struct hug_error *err)
{
	const char *glob_path = test_shard_glob();
	if (!glob_path)
		return hug_error_set(err, "mkdtemp failed");
	char text[2048];
	snprintf(text, sizeof(text),
		 "{\"model\": {%s\"hidden_size\": 32, \"n_layer\": 2, \"n_head\": 4, \"vocab_size\": 100},"
		 " \"data\": {\"train\": [{\"path\": \"%s\"}], \"seq_len\": 16},"
		 " \"optim\": {\"lr\": 0.001}, \"train\": {\"steps\": 5}}", arch_json, glob_path);
	hug_error_clear(err);
	return recipe_parse("r.json", text, NULL, 0, 1, r, err);
}

TEST(model_family_from_recipe_arch)
{
	struct recipe r;
	struct hug_error err = { 0 };
	REQUIRE(parse_arch("", &r, &err) == 0); /* absent: the default family */
	CHECK(r.model.family == &bloom_family && model_families[0] == &bloom_family);
	CHECK(r.model.dims.hidden_size == 32 && r.model.dims.n_kv_head == 4);
	recipe_free(&r);
	REQUIRE(parse_arch("\"arch\": \"bloom\", ", &r, &err) == 0);
	CHECK(r.model.family == &bloom_family);
	CHECK(model_config_param_count(&r.model) == bloom_param_count(bloom_config_of(&r.model)));
	recipe_free(&r);
	REQUIRE(parse_arch("\"arch\": \"llama\", ", &r, &err) == 0);
	CHECK(!strcmp(r.model.family->name, "llama") && r.model.dims.n_kv_head == 4);
	recipe_free(&r);
	CHECK(parse_arch("\"arch\": \"gpt2\", ", &r, &err) == -1);
	CHECK(strstr(err.msg, "r.json: model.arch:") &&
	      strstr(err.msg, "(bloom, llama, qwen2, qwen3, mistral)") &&
	      strstr(err.msg, "\"gpt2\""));
}

/* Reads `json` as dir/config.json through model_config_read. */
static int read_config(const char *dir, const char *json, struct model_config *c,
		       struct hug_error *err)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/config.json", dir);
	test_write_file(path, json);
	hug_error_clear(err);
	return model_config_read(dir, c, err);
}

TEST(model_family_from_config_json)
{
	char dir[] = "/tmp/hug-model-cfg-XXXXXX";
	REQUIRE(mkdtemp(dir));
	struct model_config c;
	struct hug_error err = { 0 };
	const char *sizes = "\"vocab_size\": 64, \"hidden_size\": 16, \"n_layer\": 2, \"n_head\": 4";
	char json[512];
	snprintf(json, sizeof(json), "{\"model_type\": \"bloom\", %s}", sizes);
	CHECK(read_config(dir, json, &c, &err) == 0 && c.family == &bloom_family);
	snprintf(json, sizeof(json), "{\"architectures\": [\"BloomForCausalLM\"], %s}", sizes);
	CHECK(read_config(dir, json, &c, &err) == 0 && c.family == &bloom_family);
	CHECK(c.dims.vocab_size == 64 && c.dims.head_dim == 4 && c.dims.tie_word_embeddings);
	snprintf(json, sizeof(json), "{%s}", sizes); /* neither: the default family */
	CHECK(read_config(dir, json, &c, &err) == 0 && c.family == &bloom_family);

	snprintf(json, sizeof(json), "{\"model_type\": \"opt\", %s}", sizes);
	CHECK(read_config(dir, json, &c, &err) == -1);
	CHECK(strstr(err.msg, "config.json: model_type: expected \"bloom\" or \"llama\" or "
			      "\"qwen2\" or \"qwen3\" or \"mistral\", got \"opt\"") &&
	      strstr(err.msg, "model families: bloom, llama"));
	snprintf(json, sizeof(json), "{\"architectures\": [\"OPTForCausalLM\"], %s}", sizes);
	CHECK(read_config(dir, json, &c, &err) == -1);
	CHECK(strstr(err.msg, dir) && strstr(err.msg, "architectures[0]: expected "
					     "\"BloomForCausalLM\" or \"LlamaForCausalLM\"") &&
	      strstr(err.msg, "got \"OPTForCausalLM\""));
	snprintf(json, sizeof(json), "{\"architectures\": [\"Qwen3ForCausalLM\"], "
		 "\"vocab_size\": 64, \"hidden_size\": 16, \"num_hidden_layers\": 2, "
		 "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": 6}");
	CHECK(read_config(dir, json, &c, &err) == 0 && !strcmp(c.family->name, "qwen3") &&
	      c.dims.n_kv_head == 2 && c.dims.head_dim == 6);
	snprintf(json, sizeof(json), "{\"model_type\": \"mistral\", \"architectures\": "
		 "[\"LlamaForCausalLM\"], %s}", sizes);
	CHECK(read_config(dir, json, &c, &err) == -1 && strstr(err.msg, "different model families"));
	snprintf(json, sizeof(json), "{\"architectures\": \"BloomForCausalLM\", %s}", sizes);
	CHECK(read_config(dir, json, &c, &err) == -1);
	CHECK(strstr(err.msg, "architectures: expected a list"));

	/* a whole directory: hf_model_load refuses it before allocating */
	struct model m = { 0 };
	snprintf(json, sizeof(json), "{\"model_type\": \"gpt2\", %s}", sizes);
	read_config(dir, json, &c, &err);
	hug_error_clear(&err);
	CHECK(hf_model_load(dir, DT_F32, false, &m, &err) == -1 && !m.family);
	CHECK(strstr(err.msg, "config.json: model_type:") && strstr(err.msg, "\"gpt2\""));
	char path[256];
	snprintf(path, sizeof(path), "%s/config.json", dir);
	unlink(path);
	rmdir(dir);
}

/* Every linear layer of a BLOOM model split over `size` ranks (this is
 * rank `rank`) is a registered parameter of the shape the list gives. */
static void check_linears(int size, int rank)
{
	struct bloom_config bc = bloom_config_make(50, 24, 2, 6);
	struct model_config mc;
	struct model m;
	struct model_tp tp = { .rank = rank, .size = size };
	bloom_model_config(&mc, &bc);
	REQUIRE(model_config_tp_validate(&mc, size, NULL) == 0);
	model_init(&m, &mc, DT_F32, false, &tp, NULL);
	const struct param_table *pt = model_params(&m);
	int seen = 0;
	for (int l = 0; l < mc.dims.n_layer; l++)
		for (int k = 0; k < model_config_n_linear(&mc); k++) {
			struct model_linear lin, shape;
			char name[PARAM_NAME_MAX + 8];
			model_linear(&m, l, k, &lin);
			model_config_linear(&mc, l, k, &shape);
			CHECK(!strcmp(lin.path, shape.path) && lin.in == shape.in &&
			      lin.out == shape.out && lin.split == shape.split);
			CHECK(!strcmp(lin.module, bloom_family.linears[k].module));
			snprintf(name, sizeof(name), "%s.weight", lin.path);
			const struct param *p = param_table_find(pt, name);
			REQUIRE(p && p->t == lin.weight);
			int64_t rows = lin.out, cols = lin.in;
			if (lin.split == MODEL_SPLIT_COLUMN)
				rows = lin.out / size + (rank < lin.out % size);
			if (lin.split == MODEL_SPLIT_ROW)
				cols = lin.in / size + (rank < lin.in % size);
			CHECK(lin.weight->ndim == 2 && lin.weight->shape[0] == rows &&
			      lin.weight->shape[1] == cols);
			if (size > 1) {
				CHECK(p->shard.dim == (lin.split == MODEL_SPLIT_COLUMN ? 0 : 1));
				CHECK(p->shard.full_shape[0] == lin.out &&
				      p->shard.full_shape[1] == lin.in);
			}
			CHECK(lin.adapter && *lin.adapter == NULL);
			seen++;
		}
	CHECK(seen == 2 * BLOOM_N_LINEAR);
	model_free(&m);
	CHECK(!m.family && !m.impl);
}

TEST(model_bloom_linear_list_matches_parameters)
{
	check_linears(1, 0);
	check_linears(2, 1);
	check_linears(3, 0);
	check_linears(3, 2);
}

TEST(model_interface_layers_do_not_name_a_family)
{
	if (access("scripts/check-model-interface.sh", X_OK) != 0)
		SKIP("run from the repository root");
	CHECK(system("scripts/check-model-interface.sh >/dev/null") == 0);
}

/* Every family fills every slot of its table, its names are unique, and
 * each preset it lists is a valid config of that family. */
TEST(model_families_fill_their_tables)
{
	int n = 0;
	for (int i = 0; model_families[i]; i++, n++) {
		const struct model_family *f = model_families[i];
		CHECK(f->name && f->display && f->model_types && f->model_types[0] &&
		      f->architectures && f->architectures[0] && f->presets);
		CHECK(f->impl_size > 0 && f->linears && f->n_linear > 0);
		CHECK(model_family_find(f->name) == f);
		const void *slots[] = {
			(const void *)f->config_make, (const void *)f->config_set,
			(const void *)f->config_preset, (const void *)f->config_validate,
			(const void *)f->config_from_json, (const void *)f->config_write,
			(const void *)f->config_print, (const void *)f->tp_validate,
			(const void *)f->param_count, (const void *)f->flops_per_token,
			(const void *)f->linear, (const void *)f->init, (const void *)f->free,
			(const void *)f->init_weights, (const void *)f->parts,
			(const void *)f->config_of, (const void *)f->take_settings,
			(const void *)f->to_device, (const void *)f->copy_weights,
			(const void *)f->cast, (const void *)f->forward, (const void *)f->loss,
			(const void *)f->vocab_slice, (const void *)f->kv_new,
			(const void *)f->kv_free, (const void *)f->forward_cached,
		};
		for (size_t k = 0; k < sizeof(slots) / sizeof(slots[0]); k++)
			if (!slots[k])
				test_fail_at(__FILE__, __LINE__, "%s: slot %zu is NULL", f->name, k);
		for (int p = 0; f->presets[p]; p++) {
			struct model_config c;
			struct hug_error err = { 0 };
			REQUIRE(model_config_preset(f->presets[p], &c) == 0);
			CHECK(c.family == f && model_config_validate(&c, f->presets[p], &err) == 0);
		}
		for (int j = 0; j < i; j++)
			CHECK(strcmp(model_families[j]->name, f->name) != 0);
	}
	CHECK(n >= 1);
	char names[64];
	CHECK(!strcmp(model_family_names(names, sizeof(names)),
		      "bloom, llama, qwen2, qwen3, mistral"));
}
