/* test_recipe.c: recipe parsing: defaults, overrides, and one clear error
 * per kind of mistake (each names the file and the key). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../nn/bloom.h"
#include "../train/recipe.h"
#include "../train/recipe_schema.h"
#include "harness.h"

static int parse(const char *extra_json, const char *const *ov, int n_ov, int world,
		 struct recipe *r, struct hug_error *err)
{
	const char *shard_glob = test_shard_glob();
	if (!shard_glob)
		return hug_error_set(err, "mkdtemp failed");
	char text[4096];
	snprintf(text, sizeof(text),
		 "{\"model\": {\"hidden_size\": 32, \"n_layer\": 2, \"n_head\": 4, \"vocab_size\": 100},"
		 " \"data\": {\"train\": [{\"path\": \"%s\", \"weight\": 1.0}], \"seq_len\": 64},"
		 " \"optim\": {\"lr\": 0.001},"
		 " \"train\": {\"steps\": 50}%s}", shard_glob, extra_json);
	hug_error_clear(err);
	return recipe_parse("r.json", text, ov, n_ov, world, r, err);
}

/* Expects a parse error containing both fragments. */
static void expect_error(const char *extra, const char *ov, const char *frag1, const char *frag2)
{
	struct recipe r;
	struct hug_error err = { 0 };
	const char *ovs[1] = { ov };
	int rc = parse(extra, ovs, ov ? 1 : 0, 1, &r, &err);
	if (rc == 0) {
		test_fail_at(__FILE__, __LINE__, "no error for %s %s", extra, ov ? ov : "");
		recipe_free(&r);
		return;
	}
	if (!strstr(err.msg, "r.json") || !strstr(err.msg, frag1) || (frag2 && !strstr(err.msg, frag2)))
		test_fail_at(__FILE__, __LINE__, "message \"%s\" lacks \"%s\"/\"%s\"", err.msg,
			     frag1, frag2 ? frag2 : "");
}

TEST(recipe_defaults_and_fields)
{
	struct recipe r;
	struct hug_error err = { 0 };
	REQUIRE(parse("", NULL, 0, 1, &r, &err) == 0);
	CHECK(r.model.dims.hidden_size == 32 && r.model.dims.n_head == 4 && r.model.dims.vocab_size == 100);
	CHECK(r.seq_len == 64 && r.steps == 50);
	CHECK(r.micro_batch_size == 8 && r.global_batch_size == 32 && r.accumulation == 4);
	CHECK(r.optim.kind == OPTIM_ADAMW && r.optim.beta1 == 0.9 && r.optim.beta2 == 0.95);
	CHECK(r.schedule.max_lr == 0.001 && r.schedule.decay == LR_COSINE);
	CHECK(r.schedule.decay_steps == 50);
	CHECK(r.grad_clip == 1.0 && r.optim.weight_decay == 0.1);
	CHECK(r.device == DEV_CPU && r.precision == PRECISION_F32);
	CHECK(!r.peft.enabled && r.tensor_parallel == 1);
	CHECK(!strcmp(r.out_dir, "runs/hug") && r.seed == 1234);
	CHECK(r.json && strstr(r.json, "\"seq_len\""));
	CHECK(r.recompute == AG_RECOMPUTE_NONE);
	recipe_free(&r);
	const char *modes[] = { "train.activation_checkpointing=block",
				"train.activation_checkpointing=selective" };
	for (int k = 0; k < 2; k++) {
		REQUIRE(parse("", &modes[k], 1, 1, &r, &err) == 0);
		CHECK(r.recompute == (k ? AG_RECOMPUTE_SELECTIVE : AG_RECOMPUTE_BLOCK));
		recipe_free(&r);
	}
}

TEST(recipe_set_overrides)
{
	struct recipe r;
	struct hug_error err = { 0 };
	const char *ov[] = { "optim.lr=1e-4", "train.out_dir=runs/x", "optim.betas=[0.8,0.9]",
			     "peft.r=4", "batch.micro_batch_size=4" };
	REQUIRE(parse("", ov, 5, 1, &r, &err) == 0);
	CHECK(r.schedule.max_lr == 1e-4);
	CHECK(!strcmp(r.out_dir, "runs/x"));
	CHECK(r.optim.beta1 == 0.8 && r.optim.beta2 == 0.9);
	CHECK(r.peft.enabled && r.peft.r == 4 && r.peft.n_targets == 0); /* the family's default */
	CHECK(r.accumulation == 8);
	CHECK(strstr(r.json, "runs/x") != NULL); /* the effective recipe is saved */
	recipe_free(&r);
}

TEST(recipe_errors_name_file_and_key)
{
	expect_error(", \"optim2\": {}", NULL, "optim2", "did you mean \"optim\"");
	expect_error("", "optim.lrr=3", "optim.lrr", "did you mean \"optim.lr\"");
	expect_error("", "optim.lr=\"fast\"", "optim.lr", "\"fast\"");
	expect_error("", "optim.lr=-1", "optim.lr", "-1");
	expect_error("", "data.seq_len=4096", "data.seq_len", "max_seq_len");
	expect_error("", "batch.global_batch_size=30", "batch.global_batch_size", "multiple");
	expect_error("", "model.n_head=5", "not divisible", NULL);
	expect_error("", "device=\"tpu\"", "device", "cpu|cuda");
	expect_error("", "train.steps=2.5", "train.steps", "integer");
	expect_error("", "data.train=[{\"path\": \"/nonexistent/*.h5\"}]", "data.train[0].path",
		     "matches no files");
	expect_error("", "data.tokenizer=\"/nonexistent.json\"", "data.tokenizer", "cannot open");
	expect_error("", "model.from_pretrained=\"/nonexistent\"", "model.from_pretrained", "/nonexistent");
	expect_error("", "schedule.min_lr=1", "schedule.min_lr", "above");
	expect_error("", "optim.betas=[0.9]", "optim.betas", NULL);
	expect_error("", "model.hidden_dropout=1.5", "model.hidden_dropout", NULL);
	expect_error("", "parallel.tensor=3", "parallel.tensor", "processes");
	expect_error(", \"optim\": {\"lr\": 1}", NULL, "optim", "given twice");
}

TEST(recipe_not_json_reports_line)
{
	struct recipe r;
	struct hug_error err = { 0 };
	CHECK(recipe_parse("bad.json", "{\n\"a\": 1,\n oops }", NULL, 0, 1, &r, &err) == -1);
	CHECK(strstr(err.msg, "bad.json:3") != NULL);
	hug_error_clear(&err);
	CHECK(recipe_load("/nonexistent/recipe.json", NULL, 0, 1, &r, &err) == -1);
	CHECK(strstr(err.msg, "/nonexistent/recipe.json") != NULL);
}

TEST(recipe_batch_divisible_by_ranks)
{
	struct recipe r;
	struct hug_error err = { 0 };
	/* 32 = 8 x 4 ranks: ok; 3 ranks: error */
	CHECK(parse("", NULL, 0, 4, &r, &err) == 0 && r.accumulation == 1);
	recipe_free(&r);
	CHECK(parse("", NULL, 0, 3, &r, &err) == -1);
	CHECK(strstr(err.msg, "3 data-parallel ranks") != NULL);
}

TEST(recipe_docs_list_every_key)
{
	FILE *f = fopen("docs/recipes.md", "r");
	REQUIRE(f);
	static char doc[65536];
	size_t n = fread(doc, 1, sizeof(doc) - 1, f);
	fclose(f);
	doc[n] = '\0';
	for (int i = 0; i < recipe_n_keys; i++) {
		char key[128];
		snprintf(key, sizeof(key), "`%s`", recipe_keys[i].path);
		if (!strstr(doc, key))
			test_fail_at(__FILE__, __LINE__, "docs/recipes.md does not document %s",
				     recipe_keys[i].path);
	}
}

TEST(recipe_shipped_recipes_parse)
{
	const char *shard_glob = test_shard_glob();
	REQUIRE(shard_glob);
	char train[160];
	snprintf(train, sizeof(train), "data.train=[{\"path\": \"%s\", \"weight\": 1}]", shard_glob);
	const char *ov[] = { train, "data.valid=null", "data.tokenizer=null" };
	struct recipe r;
	struct hug_error err = { 0 };
	REQUIRE(recipe_load("recipes/bloom-560m-pretrain.json", ov, 3, 8, &r, &err) == 0);
	CHECK(model_config_param_count(&r.model) == 559214592);
	CHECK(r.seq_len == 2048 && r.global_batch_size == 256 && r.accumulation == 8);
	CHECK(r.schedule.max_lr == 3e-4 && r.schedule.min_lr == 1e-5);
	CHECK(r.optim.beta2 == 0.95 && r.optim.weight_decay == 0.1 && r.grad_clip == 1.0);
	CHECK(bloom_config_of(&r.model)->initializer_range == 0.0048);
	recipe_free(&r);
	REQUIRE(recipe_load("recipes/demo-cpu.json", ov, 3, 1, &r, &err) == 0);
	CHECK(r.steps > 0 && r.n_sample_prompts > 0);
	recipe_free(&r);
	if (err.set)
		printf("%s\n", err.msg);
}

/* Integers too large for int64 (or for a double to hold exactly) are
 * refused before any cast, naming the key the user wrote and the range. */
TEST(recipe_huge_integers_name_the_key)
{
	expect_error("", "model.hidden_size=4e62", "model.hidden_size", "4e+62");
	expect_error("", "model.hidden_size=4e62", "model.hidden_size", "9007199254740991]");
	expect_error("", "train.steps=1e22", "train.steps", "1e+22");
	expect_error("", "schedule.warmup_steps=-1e30", "schedule.warmup_steps", "[0");
	expect_error("", "data.seq_len=1e300", "data.seq_len", NULL);
	/* the key named is the one given, not one derived from it */
	struct recipe r;
	struct hug_error err = { 0 };
	const char *ov[1] = { "train.steps=1e22" };
	CHECK(parse("", ov, 1, 1, &r, &err) == -1);
	CHECK(strstr(err.msg, "decay_steps") == NULL);
	/* in range for the key but the products overflow: named, no allocation */
	expect_error("", "model.hidden_size=4000000000000", "parameters", "hidden_size");
	const char *big[2] = { "batch.micro_batch_size=4503599627370496",
			       "batch.global_batch_size=4503599627370496" };
	hug_error_clear(&err);
	CHECK(parse("", big, 2, 1, &r, &err) == -1);
	CHECK(strstr(err.msg, "data.seq_len") != NULL);
}

/* An integer key far outside int64/int is refused (found by
 * tests/fuzz/fuzz_recipe.c: the cast was undefined behaviour). */
TEST(recipe_rejects_integers_out_of_range)
{
	expect_error("", "train.log_every=1e30", "train.log_every", "expected an integer");
	expect_error("", "train.steps=-1e300", "train.steps", "expected an integer");
}
