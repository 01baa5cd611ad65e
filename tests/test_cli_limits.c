/* test_cli_limits.c: the hug command line refuses what it cannot do with
 * one clear message and exit 2, never a crash or an out-of-memory abort:
 * numbers out of range in recipes and config.json, generation and eval
 * inputs too long for memory, bad --world values, unreadable training
 * text; and resuming a finished run adds no second validation record.
 * Needs HUG_BIN (set by make test). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "harness.h"
#include "train_fixture.h"

static const char *hug_bin(void)
{
	return getenv("HUG_BIN");
}

/* A new temporary directory (static storage per call site's buffer). */
static bool temp_dir(char *buf)
{
	strcpy(buf, "/tmp/hug-limits-XXXXXX");
	return mkdtemp(buf) != NULL;
}

/* A recipe needing no data but an empty shard file, in dir. */
static void small_recipe(const char *dir, char *path, size_t n, const char *model)
{
	char shard[256], text[1024];
	snprintf(shard, sizeof(shard), "%s/a.h5", dir);
	test_write_file(shard, "");
	snprintf(path, n, "%s/r.json", dir);
	snprintf(text, sizeof(text),
		 "{\"model\": %s,\n \"data\": {\"train\": [{\"path\": \"%s/*.h5\"}], \"seq_len\": 64},"
		 " \"optim\": {\"lr\": 0.001}, \"train\": {\"steps\": 50}}", model, dir);
	test_write_file(path, text);
}

TEST(cli_recipe_huge_numbers_name_the_key)
{
	if (!hug_bin())
		SKIP("HUG_BIN not set (run through make test)");
	char dir[64], recipe[256], cmd[1024], out[4096];
	REQUIRE(temp_dir(dir));
	/* the recipe: hidden_size 4e62 */
	small_recipe(dir, recipe, sizeof(recipe),
		     "{\"vocab_size\": 4, \"hidden_size\": 4e62, \"n_layer\": 1, \"n_head\": 1}");
	snprintf(cmd, sizeof(cmd), "%s recipe check %s", hug_bin(), recipe);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "model.hidden_size") && strstr(out, "4e+62") && strstr(out, "[1, "));
	small_recipe(dir, recipe, sizeof(recipe),
		     "{\"vocab_size\": 100, \"hidden_size\": 32, \"n_layer\": 2, \"n_head\": 4}");
	snprintf(cmd, sizeof(cmd), "%s recipe check %s --set train.steps=1e22", hug_bin(), recipe);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "train.steps") && strstr(out, "1e+22") && !strstr(out, "decay_steps"));
	/* a config.json (from_pretrained) with a huge hidden_size */
	char model[256], cfg[512];
	snprintf(model, sizeof(model), "%s/model", dir);
	mkdir(model, 0755);
	snprintf(cfg, sizeof(cfg), "%s/config.json", model);
	test_write_file(cfg, "{\"model_type\": \"bloom\", \"vocab_size\": 4, \"hidden_size\": 4e62, "
			"\"n_layer\": 1, \"n_head\": 1}");
	char pre[512];
	snprintf(pre, sizeof(pre), "{\"from_pretrained\": \"%s\"}", model);
	small_recipe(dir, recipe, sizeof(recipe), pre);
	snprintf(cmd, sizeof(cmd), "%s recipe check %s", hug_bin(), recipe);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "config.json") && strstr(out, "hidden_size"));
	/* in range on its own, but the parameter count is not */
	test_write_file(cfg, "{\"model_type\": \"bloom\", \"vocab_size\": 2000000000, "
			"\"hidden_size\": 200000000, \"n_layer\": 1000, \"n_head\": 1}");
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "config.json") && strstr(out, "parameters"));
	train_fixture_rmtree(dir);
}

TEST(cli_recipe_world_must_be_positive)
{
	if (!hug_bin())
		SKIP("HUG_BIN not set (run through make test)");
	char dir[64], recipe[256], cmd[1024], out[4096];
	REQUIRE(temp_dir(dir));
	small_recipe(dir, recipe, sizeof(recipe),
		     "{\"vocab_size\": 100, \"hidden_size\": 32, \"n_layer\": 2, \"n_head\": 4}");
	const char *bad[] = { "0", "-1", "abc", "1e99", "99999999999" };
	for (int i = 0; i < 5; i++) {
		snprintf(cmd, sizeof(cmd), "%s recipe check %s --world %s", hug_bin(), recipe, bad[i]);
		CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
		char want[64];
		snprintf(want, sizeof(want), "\"%s\"", bad[i]);
		CHECK(strstr(out, "--world: expected a positive integer") && strstr(out, want));
	}
	snprintf(cmd, sizeof(cmd), "%s recipe check %s --world 2", hug_bin(), recipe);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	train_fixture_rmtree(dir);
}

TEST(cli_generate_refuses_requests_too_long)
{
	if (!hug_bin())
		SKIP("HUG_BIN not set (run through make test)");
	char cmd[1024], out[4096];
	snprintf(cmd, sizeof(cmd), "%s generate --model tests/fixtures/bloom-tiny-a "
		 "--prompt-ids 1,5,9 --max-new-tokens 100000000 --greedy", hug_bin());
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "max-new-tokens 100000000") && strstr(out, "at most"));
	/* a 60,000-id prompt: its attention scores alone need ~80 GiB */
	char dir[64], ids[256], evin[256];
	REQUIRE(temp_dir(dir));
	snprintf(ids, sizeof(ids), "%s/ids", dir);
	snprintf(evin, sizeof(evin), "%s/eval.json", dir);
	FILE *f = fopen(ids, "w"), *g = fopen(evin, "w");
	REQUIRE(f && g);
	fputs("[[", g);
	for (int i = 0; i < 60000; i++) {
		fprintf(f, "%s5", i ? "," : "");
		fprintf(g, "%s5", i ? "," : "");
	}
	fputs("]]", g);
	fclose(f);
	fclose(g);
	snprintf(cmd, sizeof(cmd), "%s generate --model tests/fixtures/bloom-tiny-a "
		 "--prompt-ids $(cat %s) --max-new-tokens 2 --greedy", hug_bin(), ids);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "prompt of 60000 ids") && strstr(out, "--max-memory"));
	/* the bound is a flag */
	snprintf(cmd, sizeof(cmd), "%s generate --model tests/fixtures/bloom-tiny-a "
		 "--prompt-ids 1,5,9 --max-new-tokens 10 --greedy --max-memory 1e-9", hug_bin());
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "GiB") != NULL);
	snprintf(cmd, sizeof(cmd), "%s eval --model tests/fixtures/bloom-tiny-a --input %s",
		 hug_bin(), evin);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, evin) && strstr(out, "60000 ids"));
	train_fixture_rmtree(dir);
}

TEST(cli_tokenizer_train_unreadable_file_names_it)
{
	if (!hug_bin())
		SKIP("HUG_BIN not set (run through make test)");
	char dir[64], cmd[1024], out[4096];
	REQUIRE(temp_dir(dir));
	snprintf(cmd, sizeof(cmd), "%s tokenizer train --vocab-size 300 --out %s/t.json "
		 "%s/missing.txt", hug_bin(), dir, dir);
	CHECK(test_run_command(cmd, out, sizeof(out)) != 0);
	CHECK(strstr(out, "missing.txt") && strstr(out, "No such file"));
	/* a directory opens but cannot be read: the reason, not "read error" */
	snprintf(cmd, sizeof(cmd), "%s tokenizer train --vocab-size 300 --out %s/t.json %s",
		 hug_bin(), dir, dir);
	CHECK(test_run_command(cmd, out, sizeof(out)) != 0);
	CHECK(strstr(out, dir) && strstr(out, "Is a directory"));
	train_fixture_rmtree(dir);
}

/* Validation records ("valid_loss") at `step` in RUN/metrics.jsonl. */
static int valid_records_at(const char *run_dir, int step)
{
	char *path = fs_join(run_dir, "metrics.jsonl"), *text = test_read_file(path, NULL);
	hug_free(path);
	if (!text)
		return -1;
	char want[64];
	snprintf(want, sizeof(want), "{\"step\":%d,\"valid_loss\"", step);
	int n = 0;
	for (const char *p = text; (p = strstr(p, want)); p++)
		n++;
	hug_free(text);
	return n;
}

TEST(cli_train_resume_of_finished_run_keeps_one_validation)
{
	if (!hug_bin())
		SKIP("HUG_BIN not set (run through make test)");
	const char *dir = train_fixture_setup(20000, NULL,
					      ", \"steps\": 12, \"eval_every\": 6, \"save_every\": 0, "
					      "\"sample_tokens\": 0");
	REQUIRE(dir);
	char recipe[256], run[256], cmd[1024], out[8192];
	snprintf(recipe, sizeof(recipe), "%s/recipe.json", dir);
	snprintf(run, sizeof(run), "%s/run", dir);
	snprintf(cmd, sizeof(cmd), "%s train %s --set data.valid_fraction=0.1", hug_bin(), recipe);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	CHECK(valid_records_at(run, 12) == 1);
	snprintf(cmd, sizeof(cmd), "%s train %s --set data.valid_fraction=0.1 --resume", hug_bin(),
		 recipe);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	CHECK(valid_records_at(run, 12) == 1);
	train_fixture_rmtree(dir);
}
