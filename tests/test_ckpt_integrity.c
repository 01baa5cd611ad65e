/* test_ckpt_integrity.c: checkpoint checksums and atomic directory
 * replacement: fs_replace_dir leaves the old or the new complete directory
 * at every step; a flipped bit in model.safetensors makes --resume fall
 * back to the previous checkpoint (naming the damaged one) and hug eval
 * refuse (naming the file); a checkpoint missing a file or with a
 * truncated trainer_state.json is skipped; one without a record (older
 * hug) resumes unverified. Needs HUG_BIN for the command-line parts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../train/checkpoint.h"
#include "harness.h"
#include "train_fixture.h"

static const char *hug_bin(void)
{
	return getenv("HUG_BIN");
}

static int put(const char *dir, const char *name, const char *text)
{
	struct hug_error err = { 0 };
	char *p = fs_join(dir, name);
	int rc = fs_write_atomic(p, text, strlen(text), &err);
	hug_free(p);
	return rc;
}

/* True when dir/name holds exactly `text`. */
static bool holds(const char *dir, const char *name, const char *text)
{
	struct hug_error err = { 0 };
	char *p = fs_join(dir, name), *got;
	bool ok = fs_read_file(p, 1 << 20, &got, NULL, &err) == 0;
	ok = ok && !strcmp(got, text);
	if (ok || err.set == false)
		hug_free(got);
	hug_free(p);
	return ok;
}

TEST(fs_replace_dir_keeps_a_complete_directory_at_every_step)
{
	char root[] = "/tmp/hug-replace-XXXXXX";
	REQUIRE(mkdtemp(root));
	char *dir = fs_join(root, "d"), *tmp = fs_join(root, "d.tmp");
	struct hug_error err = { 0 };
	/* no target yet: a plain rename */
	REQUIRE(mkdir(tmp, 0755) == 0 && put(tmp, "a", "old-a") == 0 && put(tmp, "b", "old-b") == 0);
	CHECK(fs_replace_dir(tmp, dir, NULL, &err) == 0);
	CHECK(holds(dir, "a", "old-a") && holds(dir, "b", "old-b") && !fs_exists(tmp));
	/* stopped right after the exchange (a crash there): the new directory
	 * is complete in place, the old one complete at tmp */
	REQUIRE(mkdir(tmp, 0755) == 0 && put(tmp, "a", "new-a") == 0);
	setenv("HUG_TEST_REPLACE_STOP", "after_exchange", 1);
	CHECK(fs_replace_dir(tmp, dir, NULL, &err) == 0);
	unsetenv("HUG_TEST_REPLACE_STOP");
	CHECK(holds(dir, "a", "new-a"));
	char *b = fs_join(dir, "b");
	CHECK(!fs_exists(b)); /* the new content alone, not a mix */
	hug_free(b);
	CHECK(holds(tmp, "a", "old-a") && holds(tmp, "b", "old-b"));
	CHECK(fs_remove_tree(tmp, &err) == 0);
	/* the whole replacement: new content, nothing left beside it */
	REQUIRE(mkdir(tmp, 0755) == 0 && put(tmp, "c", "newer-c") == 0);
	char *sub = fs_join(dir, "sub");
	REQUIRE(mkdir(sub, 0755) == 0 && put(sub, "x", "x") == 0); /* a tree goes too */
	CHECK(fs_replace_dir(tmp, dir, NULL, &err) == 0);
	CHECK(holds(dir, "c", "newer-c") && !fs_exists(sub) && !fs_exists(tmp));
	if (err.set)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	hug_free(sub);
	CHECK(fs_remove_tree(root, &err) == 0 && !fs_exists(root));
	hug_free(dir);
	hug_free(tmp);
}

/* A run of 12 steps with checkpoints at 4, 8, 12 (all kept) in dir/run. */
static const char *train_run(char *recipe, size_t n, char *out, size_t n_out)
{
	const char *dir = train_fixture_shards(1, 4000);
	if (!dir)
		return NULL;
	snprintf(recipe, n, "%s/recipe.json", dir);
	snprintf(out, n_out, "%s/run", dir);
	if (train_fixture_recipe_in(dir, NULL, ", \"steps\": 12, \"save_every\": 4, \"keep_last\": 0",
				    NULL))
		return NULL;
	char cmd[1024], log[8192];
	snprintf(cmd, sizeof(cmd), "%s train %s", hug_bin(), recipe);
	if (test_run_command(cmd, log, sizeof(log)) != 0) {
		test_fail_at(__FILE__, __LINE__, "%s", log);
		return NULL;
	}
	return dir;
}

/* Flips one bit in the middle of dir/name. */
static void flip_bit(const char *dir, const char *name)
{
	char *p = fs_join(dir, name);
	FILE *f = fopen(p, "r+b");
	REQUIRE(f);
	fseek(f, 0, SEEK_END);
	long mid = ftell(f) / 2;
	fseek(f, mid, SEEK_SET);
	int c = fgetc(f);
	fseek(f, mid, SEEK_SET);
	fputc(c ^ 0x10, f);
	fclose(f);
	hug_free(p);
}

TEST(ckpt_flipped_bit_resume_falls_back_and_eval_refuses)
{
	if (!hug_bin())
		SKIP("HUG_BIN not set (run through make test)");
	char recipe[256], out[256], cmd[1024], log[16384];
	const char *dir = train_run(recipe, sizeof(recipe), out, sizeof(out));
	REQUIRE(dir);
	char c8[300], c12[300];
	snprintf(c8, sizeof(c8), "%s/checkpoint-8", out);
	snprintf(c12, sizeof(c12), "%s/checkpoint-12", out);
	struct hug_error err = { 0 };
	bool verified = false;
	CHECK(checkpoint_verify(c12, &verified, &err) == 0 && verified);
	flip_bit(c12, "model.safetensors");
	/* eval refuses, naming the file and both digests */
	char in[300];
	snprintf(in, sizeof(in), "%s/seqs.json", dir);
	REQUIRE(put(dir, "seqs.json", "[[1,5,9,20,3,44]]") == 0);
	snprintf(cmd, sizeof(cmd), "%s eval --model %s --input %s", hug_bin(), c12, in);
	CHECK(test_run_command(cmd, log, sizeof(log)) == 2);
	CHECK(strstr(log, "checkpoint-12/model.safetensors") && strstr(log, "expected") &&
	      strstr(log, "got"));
	snprintf(cmd, sizeof(cmd), "%s generate --model %s --prompt-ids 1,2", hug_bin(), c12);
	CHECK(test_run_command(cmd, log, sizeof(log)) == 2);
	CHECK(strstr(log, "model.safetensors") != NULL);
	/* the intact checkpoint-8 still evaluates */
	snprintf(cmd, sizeof(cmd), "%s eval --model %s --input %s", hug_bin(), c8, in);
	CHECK(test_run_command(cmd, log, sizeof(log)) == 0);
	/* --resume skips checkpoint-12, naming it, and continues from 8 */
	snprintf(cmd, sizeof(cmd), "%s train %s --resume", hug_bin(), recipe);
	CHECK(test_run_command(cmd, log, sizeof(log)) == 0);
	const char *skip = strstr(log, "skipping");
	CHECK(skip && strstr(skip, "checkpoint-12") && strstr(skip, "model.safetensors"));
	CHECK(strstr(log, "resumed from") && strstr(log, "checkpoint-8 at step 8"));
	if (!strstr(log, "checkpoint-8 at step 8"))
		test_fail_at(__FILE__, __LINE__, "%s", log);
	/* step 12 was saved again over the damaged one, atomically, and verifies */
	CHECK(checkpoint_verify(c12, &verified, &err) == 0 && verified);
	if (err.set)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	train_fixture_rmtree(dir);
}

/* Removes the "files" record from dir/trainer_state.json (what an older hug
 * wrote). */
static void strip_record(const char *dir)
{
	struct hug_error err = { 0 };
	char *p = fs_join(dir, "trainer_state.json"), *text;
	REQUIRE(fs_read_file(p, 1 << 24, &text, NULL, &err) == 0);
	char *f = strstr(text, "\"files\"");
	REQUIRE(f);
	/* the record is the last member: cut from its comma to the closing } */
	char *comma = f;
	while (comma > text && *comma != ',')
		comma--;
	strcpy(comma, "\n}\n");
	REQUIRE(fs_write_atomic(p, text, strlen(text), &err) == 0);
	hug_free(text);
	hug_free(p);
}

TEST(ckpt_resume_skips_missing_file_and_truncated_state)
{
	if (!hug_bin())
		SKIP("HUG_BIN not set (run through make test)");
	char recipe[256], out[256];
	const char *dir = train_run(recipe, sizeof(recipe), out, sizeof(out));
	REQUIRE(dir);
	char c[3][300];
	for (int i = 0; i < 3; i++)
		snprintf(c[i], sizeof(c[i]), "%s/checkpoint-%d", out, 4 * (i + 1));
	/* 12: optimizer file gone; 8: trainer_state.json cut in half */
	char *p = fs_join(c[2], "optimizer.safetensors");
	CHECK(unlink(p) == 0);
	hug_free(p);
	p = fs_join(c[1], "trainer_state.json");
	struct stat st;
	REQUIRE(stat(p, &st) == 0 && truncate(p, st.st_size / 2) == 0);
	hug_free(p);
	/* 4: written "by an older hug" (no record): accepted unverified */
	strip_record(c[0]);
	FILE *rep = tmpfile();
	REQUIRE(rep);
	struct hug_error err = { 0 };
	char *pick = checkpoint_resume_pick(out, rep, &err);
	CHECK(pick && !strcmp(pick, c[0]) && !err.set);
	hug_free(pick);
	char text[4096] = { 0 };
	rewind(rep);
	size_t n = fread(text, 1, sizeof(text) - 1, rep);
	text[n] = '\0';
	fclose(rep);
	const char *s12 = strstr(text, "checkpoint-12"), *s8 = strstr(text, "checkpoint-8");
	CHECK(s12 && strstr(s12, "optimizer.safetensors"));
	CHECK(s8 && strstr(s8, "trainer_state.json"));
	CHECK(strstr(text, "unverified") != NULL);
	/* none intact: a clean error naming each */
	p = fs_join(c[0], "model.safetensors");
	CHECK(unlink(p) == 0);
	hug_free(p);
	pick = checkpoint_resume_pick(out, NULL, &err);
	CHECK(!pick && err.set);
	CHECK(strstr(err.msg, "checkpoint-4") && strstr(err.msg, "checkpoint-8") &&
	      strstr(err.msg, "checkpoint-12"));
	char cmd[1024], log[8192];
	snprintf(cmd, sizeof(cmd), "%s train %s --resume", hug_bin(), recipe);
	CHECK(test_run_command(cmd, log, sizeof(log)) != 0);
	CHECK(strstr(log, "no intact checkpoint") != NULL);
	train_fixture_rmtree(dir);
}
