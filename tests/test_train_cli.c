/* test_train_cli.c: `hug train` as a user runs it: exact resume after
 * SIGTERM and after kill -9 (bit-identical losses and parameters to the
 * uninterrupted run), bad recipes exit 2, a non-finite run stops with
 * exit 1 and no poisoned checkpoint. Needs HUG_BIN (set by make test). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "harness.h"
#include "train_fixture.h"

#define STEPS 60

static const char *hug_bin(void)
{
	return getenv("HUG_BIN");
}

/* Starts `hug train recipe [extra]` with output to log; returns the pid. */
static pid_t spawn(const char *recipe, const char *extra, const char *log)
{
	pid_t pid = fork();
	if (pid == 0) {
		FILE *f = freopen(log, "w", stdout);
		(void)f;
		dup2(fileno(stdout), 2);
		execl(hug_bin(), hug_bin(), "train", recipe, extra, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int wait_exit(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int run_train(const char *recipe, const char *extra, const char *log)
{
	return wait_exit(spawn(recipe, extra, log));
}

/* Reads "loss" of every training record of metrics.jsonl by step. */
static int read_losses(const char *run_dir, char losses[][32], int n)
{
	char *path = fs_join(run_dir, "metrics.jsonl"), *text;
	struct hug_error err = { 0 };
	int found = 0;
	if (fs_read_file(path, 1 << 24, &text, NULL, &err) == 0) {
		for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
			int step;
			char *l = strstr(line, "\"loss\":");
			if (sscanf(line, "{\"step\":%d", &step) != 1 || !l || step < 1 || step > n)
				continue;
			sscanf(l + 7, "%31[^,}]", losses[step - 1]);
			found++;
		}
		hug_free(text);
	}
	hug_free(path);
	return found;
}

static bool file_equal(const char *a, const char *b)
{
	char *x, *y;
	size_t nx, ny;
	struct hug_error err = { 0 };
	if (fs_read_file(a, 1 << 28, &x, &nx, &err))
		return false;
	if (fs_read_file(b, 1 << 28, &y, &ny, &err)) {
		hug_free(x);
		return false;
	}
	bool eq = nx == ny && memcmp(x, y, nx) == 0;
	hug_free(x);
	hug_free(y);
	return eq;
}

struct runs {
	const char *dir;
	char recipe[3][256], out[3][256], log[256];
};

static int setup(struct runs *r, const char *train_extra)
{
	r->dir = train_fixture_shards(2, 30000);
	if (!r->dir)
		return -1;
	char glob[256];
	snprintf(glob, sizeof(glob), "%s/shard-*.h5", r->dir);
	snprintf(r->log, sizeof(r->log), "%s/log.txt", r->dir);
	for (int i = 0; i < 3; i++) {
		snprintf(r->recipe[i], sizeof(r->recipe[i]), "%s/r%d.json", r->dir, i);
		snprintf(r->out[i], sizeof(r->out[i]), "%s/run%d", r->dir, i);
		if (train_fixture_recipe(r->recipe[i], glob, r->out[i],
					 ", \"hidden_dropout\": 0.1, \"attention_dropout\": 0.1",
					 train_extra, NULL))
			return -1;
	}
	return 0;
}

/* Waits until `path` exists (up to ~60 s). */
static bool wait_for(const char *path)
{
	for (int i = 0; i < 6000; i++) {
		if (fs_exists(path))
			return true;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

/* The interrupted run's losses and final weights equal the reference's. */
static void compare(const struct runs *r, int i)
{
	static char want[STEPS][32], got[STEPS][32];
	memset(want, 0, sizeof(want));
	memset(got, 0, sizeof(got));
	CHECK(read_losses(r->out[0], want, STEPS) == STEPS);
	CHECK(read_losses(r->out[i], got, STEPS) == STEPS);
	for (int s = 0; s < STEPS; s++)
		if (strcmp(want[s], got[s]))
			test_fail_at(__FILE__, __LINE__, "run %d step %d: loss %s, uninterrupted %s",
				     i, s + 1, got[s], want[s]);
	char a[512], b[512];
	snprintf(a, sizeof(a), "%s/checkpoint-%d/model.safetensors", r->out[0], STEPS);
	snprintf(b, sizeof(b), "%s/checkpoint-%d/model.safetensors", r->out[i], STEPS);
	CHECK(file_equal(a, b));
	snprintf(a, sizeof(a), "%s/checkpoint-%d/optimizer.safetensors", r->out[0], STEPS);
	snprintf(b, sizeof(b), "%s/checkpoint-%d/optimizer.safetensors", r->out[i], STEPS);
	CHECK(file_equal(a, b));
}

TEST(train_cli_exact_resume_after_sigterm_and_kill9)
{
	if (!hug_bin())
		SKIP("HUG_BIN not set (run through make test)");
	struct runs r;
	REQUIRE(setup(&r, ", \"steps\": 60, \"save_every\": 20, \"keep_last\": 0") == 0);
	/* 0: uninterrupted */
	REQUIRE(run_train(r.recipe[0], NULL, r.log) == 0);
	/* 1: SIGTERM once step 25 is logged, then --resume */
	pid_t pid = spawn(r.recipe[1], NULL, r.log);
	char ck[512];
	snprintf(ck, sizeof(ck), "%s/checkpoint-20", r.out[1]);
	CHECK(wait_for(ck));
	kill(pid, SIGTERM);
	int st = wait_exit(pid);
	CHECK(st == 128 + SIGTERM || st == 0);
	CHECK(run_train(r.recipe[1], "--resume", r.log) == 0);
	compare(&r, 1);
	/* 2: kill -9 right after checkpoint-40 appears, then --resume */
	pid = spawn(r.recipe[2], NULL, r.log);
	snprintf(ck, sizeof(ck), "%s/checkpoint-40", r.out[2]);
	CHECK(wait_for(ck));
	kill(pid, SIGKILL);
	CHECK(wait_exit(pid) == 128 + SIGKILL);
	CHECK(run_train(r.recipe[2], "--resume", r.log) == 0);
	compare(&r, 2);
	/* a fresh run into a directory with checkpoints is refused */
	CHECK(run_train(r.recipe[2], NULL, r.log) == 1);
	train_fixture_rmtree(r.dir);
}

TEST(train_cli_bad_recipes_exit_2)
{
	if (!hug_bin())
		SKIP("HUG_BIN not set (run through make test)");
	struct runs r;
	REQUIRE(setup(&r, ", \"steps\": 5, \"lrr\": 1") == 0);
	CHECK(run_train(r.recipe[0], NULL, r.log) == 2);
	char *log;
	struct hug_error err = { 0 };
	REQUIRE(fs_read_file(r.log, 1 << 20, &log, NULL, &err) == 0);
	CHECK(strstr(log, "train.lrr") && strstr(log, "unknown key"));
	hug_free(log);
	CHECK(run_train("/nonexistent/recipe.json", NULL, r.log) == 2);
	train_fixture_rmtree(r.dir);
}

TEST(train_cli_nonfinite_stops_without_poisoned_checkpoint)
{
	if (!hug_bin())
		SKIP("HUG_BIN not set (run through make test)");
	struct runs r;
	/* plain SGD at lr 10 diverges within a few steps */
	REQUIRE(setup(&r, ", \"steps\": 200, \"save_every\": 1, \"keep_last\": 0") == 0);
	char extra[] = "--set=optim.name=\"sgd\"";
	pid_t pid = fork();
	if (pid == 0) {
		FILE *f = freopen(r.log, "w", stdout);
		(void)f;
		dup2(fileno(stdout), 2);
		execl(hug_bin(), hug_bin(), "train", r.recipe[0], extra, "--set", "optim.lr=10",
		      "--set", "optim.grad_clip=0", "--set", "schedule.warmup_steps=0",
		      "--set", "schedule.decay=\"constant\"", (char *)NULL);
		_exit(127);
	}
	CHECK(wait_exit(pid) == 1);
	char *log;
	struct hug_error err = { 0 };
	REQUIRE(fs_read_file(r.log, 1 << 22, &log, NULL, &err) == 0);
	CHECK(strstr(log, "not finite") != NULL);
	hug_free(log);
	train_fixture_rmtree(r.dir);
}
