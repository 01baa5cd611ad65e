/* test_cli_options.c: the command line's shared rules as a user meets
 * them: "--" ends the options of every command (a text starting with "-"
 * can be tokenized or prompted), `hug recipe check` prints the effective
 * recipe with every default filled in and refuses LoRA targets the model
 * lacks (the check `hug train` makes, same message), and `hug train` with
 * stdout in a file, alone or under mpirun, writes one plain line per logged
 * step and no carriage return. Needs HUG_BIN (set by make test). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "harness.h"
#include "peft_fixture.h"
#include "train_fixture.h"

#define hug train_fixture_hug
#define TOK "tests/fixtures/tokenizer/bloom.json"

TEST(cli_double_dash_ends_options)
{
	if (!getenv("HUG_BIN"))
		SKIP("HUG_BIN not set (run through make test)");
	char out[4096], ref[4096], file[] = "/tmp/hug-opt-XXXXXX";
	int fd = mkstemp(file);
	REQUIRE(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fputs("--x -y", f);
	fclose(f);
	/* the reference: the same text read from a file */
	REQUIRE(hug(ref, sizeof(ref), "tokenize --tokenizer " TOK " --file %s", file) == 0);
	CHECK(hug(out, sizeof(out), "tokenize --tokenizer " TOK " -- '--x -y'") == 0);
	CHECK(strcmp(out, ref) == 0);
	CHECK(hug(out, sizeof(out), "tokenize -- --tokenizer") == 2); /* a text now, no tokenizer */
	CHECK(strstr(out, "usage: hug tokenize") != NULL);
	/* without "--" the text is an unknown option */
	CHECK(hug(out, sizeof(out), "tokenize --tokenizer " TOK " '--x -y'") == 2);
	CHECK(strstr(out, "unknown option \"--x -y\"") != NULL);
	/* an option's value may start with a dash, given apart or after = */
	CHECK(hug(out, sizeof(out), "generate --model tests/fixtures/bloom-tiny-a --tokenizer " TOK
		  " --prompt '-a' --greedy --max-new-tokens 2 2>/dev/null") == 0);
	CHECK(strncmp(out, "-a", 2) == 0);
	CHECK(hug(out, sizeof(out), "generate --model tests/fixtures/bloom-tiny-a --tokenizer " TOK
		  " --prompt=--a --greedy --max-new-tokens 2 -- 2>/dev/null") == 0);
	CHECK(strncmp(out, "--a", 3) == 0);
	/* train and recipe parse their options the same way */
	CHECK(hug(out, sizeof(out), "recipe check -- --frob") == 2);
	CHECK(strstr(out, "--frob") && strstr(out, "cannot"));
	CHECK(hug(out, sizeof(out), "train -- --frob") == 2);
	CHECK(strstr(out, "--frob") && strstr(out, "cannot"));
	CHECK(hug(out, sizeof(out), "train --frob") == 2);
	CHECK(strstr(out, "unknown option \"--frob\"") != NULL);
	unlink(file);
}

/* The value of `"key":\t` in pretty-printed JSON, as text up to the end of
 * the line ("" when absent). */
static const char *member(const char *json, const char *key, char *buf, size_t n)
{
	char want[96];
	snprintf(want, sizeof(want), "\"%s\":\t", key);
	const char *p = strstr(json, want);
	buf[0] = '\0';
	if (p)
		snprintf(buf, n, "%.*s", (int)strcspn(p + strlen(want), ",\n"), p + strlen(want));
	return buf;
}

TEST(cli_recipe_check_prints_every_default)
{
	if (!getenv("HUG_BIN"))
		SKIP("HUG_BIN not set (run through make test)");
	const char *dir = train_fixture_setup(4000, NULL, ", \"steps\": 12");
	REQUIRE(dir);
	static char out[32768], again[32768];
	char v[64], eff[512];
	REQUIRE(hug(out, sizeof(out), "recipe check %s/recipe.json 2>&1", dir) == 0);
	/* given keys as given, left-out keys at the schema's defaults */
	CHECK(!strcmp(member(out, "micro_batch_size", v, sizeof(v)), "4"));
	CHECK(!strcmp(member(out, "log_every", v, sizeof(v)), "1"));
	CHECK(!strcmp(member(out, "eval_batches", v, sizeof(v)), "8"));
	CHECK(!strcmp(member(out, "tensorboard", v, sizeof(v)), "true"));
	CHECK(!strcmp(member(out, "decay", v, sizeof(v)), "\"cosine\""));
	CHECK(strstr(out, "\"betas\":\t[0.9, 0.95]") != NULL);
	CHECK(!strcmp(member(out, "arch", v, sizeof(v)), "\"bloom\""));
	CHECK(!strcmp(member(out, "layer_norm_epsilon", v, sizeof(v)), "1e-05"));
	CHECK(!strcmp(member(out, "peft", v, sizeof(v)), "null"));
	/* the effective recipe is a recipe of the same run: checking it again
	 * prints it unchanged */
	snprintf(eff, sizeof(eff), "%s/effective.json", dir);
	test_write_file(eff, out);
	CHECK(hug(again, sizeof(again), "recipe check %s 2>&1", eff) == 0);
	CHECK(strcmp(out, again) == 0);
	/* another family: BLOOM's settings are not filled in, and it checks too */
	CHECK(hug(out, sizeof(out), "recipe check %s/recipe.json --set model.arch=llama 2>&1",
		  dir) == 0);
	CHECK(!strstr(out, "layer_norm_epsilon") && strstr(out, "\"rms_norm_eps\":\tnull"));
	CHECK(!strcmp(member(out, "arch", v, sizeof(v)), "\"llama\""));
	test_write_file(eff, out);
	CHECK(hug(again, sizeof(again), "recipe check %s 2>&1", eff) == 0);
	CHECK(strcmp(out, again) == 0);
	train_fixture_rmtree(dir);
}

TEST(cli_recipe_check_refuses_lora_targets_the_model_lacks)
{
	if (!getenv("HUG_BIN"))
		SKIP("HUG_BIN not set (run through make test)");
	const char *dir = peft_train_setup("{\"target_modules\": [\"query_key_value\", \"qkv\"]}",
					   8, NULL);
	REQUIRE(dir);
	char out[8192], want[512];
	snprintf(want, sizeof(want), "%s/recipe.json: peft.target_modules[1]: \"qkv\" matches no "
		 "linear layer of BLOOM", dir);
	CHECK(hug(out, sizeof(out), "recipe check %s/recipe.json", dir) == 2);
	if (!strstr(out, want))
		test_fail_at(__FILE__, __LINE__, "no \"%s\" in:\n%s", want, out);
	CHECK(hug(out, sizeof(out), "train %s/recipe.json", dir) == 2);
	if (!strstr(out, want))
		test_fail_at(__FILE__, __LINE__, "no \"%s\" in:\n%s", want, out);
	/* a good list checks, with the adapter defaults filled in */
	CHECK(hug(out, sizeof(out), "recipe check %s/recipe.json --set "
		  "'peft.target_modules=[\"dense\"]'", dir) == 0);
	CHECK(strstr(out, "\"r\":\t8") && strstr(out, "\"type\":\t\"lora\""));
	train_fixture_rmtree(dir);
}

/* Counts the lines of log that start with "step N/steps loss"; -1 when
 * the log holds a carriage return. */
static int step_lines(const char *log, int steps)
{
	if (strchr(log, '\r'))
		return -1;
	int n = 0;
	for (const char *p = log; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		int s, total;
		if (sscanf(p, "step %d/%d loss", &s, &total) == 2 && total == steps)
			n++;
	}
	return n;
}

static void check_plain_log(const char *dir, const char *launcher)
{
	char cmd[1024], out[256], log[512];
	snprintf(log, sizeof(log), "%s/log.txt", dir);
	snprintf(cmd, sizeof(cmd), "rm -rf %s/run; %s %s train %s/recipe.json > %s 2>&1", dir,
		 launcher, getenv("HUG_BIN"), dir, log);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	char *text = test_read_file(log, NULL);
	REQUIRE(text);
	int n = step_lines(text, 12);
	if (n != 12)
		test_fail_at(__FILE__, __LINE__, "%s: %d step lines (-1: a \\r) in:\n%s",
			     launcher[0] ? launcher : "alone", n, text);
	hug_free(text);
}

TEST(cli_train_log_to_a_file_is_one_line_per_step)
{
	if (!getenv("HUG_BIN"))
		SKIP("HUG_BIN not set (run through make test)");
	const char *dir = train_fixture_setup(4000, NULL, ", \"steps\": 12, \"tensorboard\": false");
	REQUIRE(dir);
	check_plain_log(dir, "");
	/* Open MPI gives a rank a pseudo-terminal for stdout even when
	 * mpirun's own stdout is a file */
	if (getenv("HUG_MPI_TESTS") && system("command -v mpirun >/dev/null 2>&1") == 0)
		check_plain_log(dir, "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
				"OMPI_MCA_rmaps_base_oversubscribe=1 mpirun -np 1 --oversubscribe");
	train_fixture_rmtree(dir);
}
