/* test_cli_tokenizer_checks.c: what the commands say about tokenizers: a
 * missing one names every path tried and the flag or key that supplies
 * one (generate, tokenize, prepare, train's samples); `hug train` warns
 * when the shards' vocabulary is far below the model's (and refuses one
 * above it) and when data.tokenizer is not the from_pretrained model's own
 * tokenizer.json. Needs HUG_BIN (set by make test). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "train_fixture.h"

#define hug train_fixture_hug

static void want(const char *out, const char *text, int line)
{
	if (!strstr(out, text))
		test_fail_at(__FILE__, line, "no \"%s\" in:\n%s", text, out);
}

#define WANT(out, text) want(out, text, __LINE__)

TEST(cli_missing_tokenizer_names_paths_and_flag)
{
	if (!getenv("HUG_BIN"))
		SKIP("HUG_BIN not set (run through make test)");
	char out[8192];
	CHECK(hug(out, sizeof(out), "generate --model tests/fixtures/bloom-tiny-a --prompt hi") == 2);
	WANT(out, "hug generate: no tokenizer: looked for tests/fixtures/bloom-tiny-a/tokenizer.json "
	     "(the --model directory); give one with --tokenizer T.json");
	CHECK(hug(out, sizeof(out), "generate --model tests/fixtures/bloom-tiny-a --adapter "
		  "tests/fixtures/peft/bloom-tiny-a-lora --prompt hi") == 2);
	WANT(out, "looked for tests/fixtures/peft/bloom-tiny-a-lora/tokenizer.json (the --adapter "
	     "directory), tests/fixtures/bloom-tiny-a/tokenizer.json (the --model directory); give "
	     "one with --tokenizer");
	CHECK(hug(out, sizeof(out), "generate --model tests/fixtures/bloom-tiny-a --prompt hi "
		  "--tokenizer /nonexistent/t.json") == 2);
	WANT(out, "hug generate: --tokenizer: no tokenizer: looked for /nonexistent/t.json");
	CHECK(hug(out, sizeof(out), "tokenize --tokenizer /nonexistent/t.json hi") == 2);
	WANT(out, "hug tokenize: --tokenizer: no tokenizer: looked for /nonexistent/t.json");
	CHECK(hug(out, sizeof(out), "tokenize --tokenizer tests/fixtures/bloom-tiny-a hi") == 2);
	WANT(out, "looked for tests/fixtures/bloom-tiny-a/tokenizer.json");
	CHECK(hug(out, sizeof(out), "prepare --tokenizer /nonexistent/t.json --out /tmp/hug-none "
		  "tests/fixtures/tokenizer/corpus.txt") == 2);
	WANT(out, "hug prepare: --tokenizer: no tokenizer: looked for /nonexistent/t.json");

	/* train's end-of-run samples: data.tokenizer, else the model's own;
	 * without either the run says where it looked instead of sampling */
	const char *dir = train_fixture_setup(4000, NULL, ", \"steps\": 1, \"sample_tokens\": 4, "
					      "\"sample_prompts\": [\"a\"]");
	REQUIRE(dir);
	CHECK(hug(out, sizeof(out), "train %s/recipe.json --set schedule.warmup_steps=0", dir) == 0);
	WANT(out, "no samples: no tokenizer to encode train.sample_prompts: data.tokenizer is null "
	     "and there is no model.from_pretrained directory to take one from; set "
	     "data.tokenizer");
	CHECK(hug(out, sizeof(out), "recipe check %s/recipe.json --set data.tokenizer=/nonexistent/t.json",
		  dir) == 2);
	WANT(out, "data.tokenizer: cannot open \"/nonexistent/t.json\"");
	train_fixture_rmtree(dir);
}

TEST(train_warns_when_vocab_or_tokenizer_do_not_fit_the_model)
{
	if (!getenv("HUG_BIN"))
		SKIP("HUG_BIN not set (run through make test)");
	char out[16384], msg[1024];
	const char *dir = train_fixture_setup(4000, NULL, ", \"steps\": 1");
	REQUIRE(dir);
	/* shards of 64 ids for a model of 200: a warning, and the run goes on */
	CHECK(hug(out, sizeof(out), "train %s/recipe.json --set schedule.warmup_steps=0 "
		  "--set model.vocab_size=200", dir) == 0);
	snprintf(msg, sizeof(msg), "hug train: warning: %s/recipe.json: the shards' vocabulary "
		 "(vocab_size 64) is 32%% of the model's (model.vocab_size 200): 136 embedding rows "
		 "never see a token", dir);
	WANT(out, msg);
	/* 40 of 64: no warning, and ids past the embedding are an error */
	CHECK(hug(out, sizeof(out), "train %s/recipe.json --set schedule.warmup_steps=0 "
		  "--set model.vocab_size=100 --set train.out_dir='\"%s/run2\"'", dir, dir) == 0);
	CHECK(!strstr(out, "warning"));
	CHECK(hug(out, sizeof(out), "train %s/recipe.json --set schedule.warmup_steps=0 "
		  "--set model.vocab_size=48 --set train.out_dir='\"%s/run3\"'", dir, dir) != 0);
	WANT(out, "data.train: the shards' vocab_size 64 exceeds model.vocab_size 48");

	/* shards of the gpt2 fixture tokenizer; a model trained on them whose
	 * directory holds that tokenizer, then another one */
	CHECK(hug(out, sizeof(out), "prepare --quiet --tokenizer tests/fixtures/tokenizer/gpt2.json "
		  "--out %s/g tests/fixtures/tokenizer/corpus.txt", dir) == 0);
	char recipe[512], cmd[2048];
	snprintf(recipe, sizeof(recipe), "%s/g.json", dir);
	FILE *f = fopen(recipe, "w");
	REQUIRE(f);
	fprintf(f, "{\"model\": {\"vocab_size\": 640, \"hidden_size\": 16, \"n_layer\": 1, "
		"\"n_head\": 2}, \"data\": {\"train\": [{\"path\": \"%s/g/*.h5\"}], \"seq_len\": 16, "
		"\"tokenizer\": \"tests/fixtures/tokenizer/gpt2.json\"}, \"optim\": {\"lr\": 0.001}, "
		"\"batch\": {\"micro_batch_size\": 2, \"global_batch_size\": 2}, \"schedule\": "
		"{\"decay\": \"constant\"}, \"train\": {\"steps\": 1, \"out_dir\": \"%s/grun\", "
		"\"tensorboard\": false}}", dir, dir);
	fclose(f);
	CHECK(hug(out, sizeof(out), "train %s", recipe) == 0);
	CHECK(!strstr(out, "warning"));
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/m && cp %s/grun/checkpoint-1/config.json "
		 "%s/grun/checkpoint-1/model.safetensors %s/grun/checkpoint-1/tokenizer.json %s/m/",
		 dir, dir, dir, dir, dir);
	REQUIRE(system(cmd) == 0);
	snprintf(recipe, sizeof(recipe), "%s/ft.json", dir);
	f = fopen(recipe, "w");
	REQUIRE(f);
	fprintf(f, "{\"model\": {\"from_pretrained\": \"%s/m\"}, \"data\": {\"train\": [{\"path\": "
		"\"%s/g/*.h5\"}], \"seq_len\": 16, \"tokenizer\": \"tests/fixtures/tokenizer/gpt2.json\"}, "
		"\"optim\": {\"lr\": 0.001}, \"batch\": {\"micro_batch_size\": 2, \"global_batch_size\": "
		"2}, \"schedule\": {\"decay\": \"constant\"}, \"train\": {\"steps\": 1, \"out_dir\": "
		"\"%s/ftrun\", \"tensorboard\": false}}", dir, dir, dir);
	fclose(f);
	CHECK(hug(out, sizeof(out), "train %s", recipe) == 0); /* the same tokenizer */
	CHECK(!strstr(out, "warning"));
	snprintf(cmd, sizeof(cmd), "cp tests/fixtures/tokenizer/bloom.json %s/m/tokenizer.json; "
		 "rm -rf %s/ftrun", dir, dir);
	REQUIRE(system(cmd) == 0);
	CHECK(hug(out, sizeof(out), "train %s", recipe) == 0);
	snprintf(msg, sizeof(msg), "hug train: warning: %s: data.tokenizer "
		 "tests/fixtures/tokenizer/gpt2.json (sha256:", recipe);
	WANT(out, msg);
	snprintf(msg, sizeof(msg), "is not the model's own tokenizer %s/m/tokenizer.json (sha256:",
		 dir);
	WANT(out, msg);
	train_fixture_rmtree(dir);
}
