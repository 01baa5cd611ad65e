/* test_mpi_setup.c: `hug train` under `mpirun -np 2` where rank 1 alone
 * fails at set-up (a corrupt shard, a missing shard directory, a bad
 * --set) or disagrees on the recipe (another train.steps): the job must
 * end on its own, non-zero, with a message naming rank 1 and the problem,
 * instead of hanging; and mid-run (token ids beyond the vocabulary in rank
 * 1's shards), where rank 1 must abort the job naming itself. Each rank
 * gets its own arguments or working directory through mpirun's MPMD
 * syntax (`-np 1 A : -np 1 B`); the recipe names its shards and out_dir
 * relative to the working directory, so rank 1 can see other shard files
 * under the same recipe. `timeout` bounds each
 * job at 30 s (a hang shows as exit 124). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "harness.h"
#include "train_fixture.h"

#define SETUP_MPI_ENV                                                          \
	"OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 "   \
	"ASAN_OPTIONS=detect_leaks=0 "

static bool can_run(void)
{
#ifndef HUG_MPI
	return false;
#else
	return getenv("HUG_BIN") && system("command -v mpirun >/dev/null 2>&1") == 0 &&
	       system("command -v timeout >/dev/null 2>&1") == 0;
#endif
}

/* dir/r.json over "data/shard-*.h5" with out_dir "out"; dir/a/data holds
 * good shards (rank 0's working directory is dir/a). 0 or -1. */
static int setup(const char *dir)
{
	char path[512], cmd[1200];
	snprintf(path, sizeof(path), "%s/r.json", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "{\"model\": {\"vocab_size\": 64, \"hidden_size\": 16, \"n_layer\": 1, "
		   "\"n_head\": 2},\n"
		   " \"data\": {\"train\": [{\"path\": \"data/shard-*.h5\"}], \"seq_len\": 16},\n"
		   " \"optim\": {\"lr\": 0.001},\n"
		   " \"batch\": {\"micro_batch_size\": 2, \"global_batch_size\": 4},\n"
		   " \"train\": {\"steps\": 4, \"log_every\": 1, \"out_dir\": \"out\"}}\n");
	if (fclose(f))
		return -1;
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/a/data %s/b && cp %s/shard-*.h5 %s/a/data/",
		 dir, dir, dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Runs rank 0 as `hug train ../r.json` in dir/a and rank 1 as `hug train
 * ../r.json EXTRA1` in dir/WD1, under `timeout 30`; returns the exit status
 * (124: timed out) and the output in *log (caller frees). */
static int run_pair(const char *dir, const char *wd1, const char *extra1, char **log)
{
	char cmd[3000], logpath[512], *hug = realpath(getenv("HUG_BIN"), NULL);
	if (!hug)
		hug = strdup(getenv("HUG_BIN"));
	snprintf(logpath, sizeof(logpath), "%s/%s.log", dir, wd1);
	snprintf(cmd, sizeof(cmd),
		 SETUP_MPI_ENV "timeout -k 5 30 mpirun --oversubscribe "
		 "-np 1 sh -c 'cd %s/a && exec %s train ../r.json' : "
		 "-np 1 sh -c 'cd %s/%s && exec %s train ../r.json %s' >%s 2>&1",
		 dir, hug, dir, wd1, hug, extra1, logpath);
	free(hug); /* from realpath: the ranks run in other directories */
	int st = system(cmd);
	struct hug_error err = { 0 };
	*log = NULL;
	if (fs_read_file(logpath, 1 << 20, log, NULL, &err))
		*log = hug_strdup("");
	printf("\n    exit %d; output:\n%s", WIFEXITED(st) ? WEXITSTATUS(st) : -1, *log);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The job ended by itself, non-zero, naming rank 1 and `what`. */
static void check_failed(int rc, const char *log, const char *what)
{
	CHECK(rc != 124 && rc != 137 && rc != -1); /* not killed by timeout */
	CHECK(rc != 0);
	CHECK(strstr(log, "rank 1 (") != NULL);
	CHECK(strstr(log, what) != NULL);
}

/* The fixture of one case (two shards, the working directories of setup)
 * with the shell command `prep` (NULL: none) run in its directory. The
 * directory, or NULL. */
static const char *case_fixture(const char *prep)
{
	const char *dir = train_fixture_shards(2, 4000);
	char cmd[1200];
	if (!dir || setup(dir))
		return NULL;
	snprintf(cmd, sizeof(cmd), "cd '%s' && %s", dir, prep ? prep : "true");
	return system(cmd) == 0 ? dir : NULL;
}

/* Runs the pair (rank 1 in dir/b with `extra1`), checks that the job ended
 * by itself naming rank 1 and `what` (and `also`, when given), and removes
 * the fixture unless a check failed. */
static void expect_job_ends(const char *dir, const char *extra1, const char *what,
			    const char *also)
{
	char *log;
	int rc = run_pair(dir, "b", extra1, &log);
	check_failed(rc, log, what);
	if (also)
		CHECK(strstr(log, also) != NULL);
	hug_free(log);
	if (!test_failed_now())
		train_fixture_rmtree(dir);
}

#define SKIP_UNLESS_CAN_RUN()                                                                      \
	do {                                                                                       \
		if (!can_run())                                                                    \
			SKIP("no MPI build, mpirun, timeout or HUG_BIN (run through make test)");  \
	} while (0)

TEST(mpi_setup_rank1_corrupt_shard_ends_job)
{
	SKIP_UNLESS_CAN_RUN();
	/* rank 1's copy of shard 1 is cut short */
	const char *dir = case_fixture("mkdir -p b/data && cp shard-*.h5 b/data/ && "
				       "truncate -s 1000 b/data/shard-00001.h5");
	REQUIRE(dir);
	expect_job_ends(dir, "", "shard-00001.h5", NULL);
}

TEST(mpi_setup_rank1_missing_shard_dir_ends_job)
{
	SKIP_UNLESS_CAN_RUN();
	const char *dir = case_fixture(NULL); /* dir/b has no data/ */
	REQUIRE(dir);
	expect_job_ends(dir, "", "data/shard-*.h5", NULL);
}

TEST(mpi_setup_rank1_bad_set_ends_job)
{
	SKIP_UNLESS_CAN_RUN();
	const char *dir = case_fixture("ln -s ../a/data b/data");
	REQUIRE(dir);
	expect_job_ends(dir, "--set train.stepz=3", "train.stepz", NULL);
}

TEST(mpi_setup_rank1_other_recipe_refused)
{
	SKIP_UNLESS_CAN_RUN();
	const char *dir = case_fixture("ln -s ../a/data b/data");
	REQUIRE(dir);
	/* both values */
	expect_job_ends(dir, "--set train.steps=3", "train.steps", "rank 0 has 4, rank 1 has 3");
}

/* Replaces each run of uint16 tokens a, a + 1, a + 2, a + 3 (4 <= a < 60;
 * the fixture's documents count up, HDF5's metadata does not) in `path` with ids beyond the
 * vocabulary (65535): the shard opens, but reading those tokens fails
 * mid-run. 0 or -1. */
static int poison_tokens(const char *path)
{
	struct hug_error err = { 0 };
	char *data;
	size_t n;
	if (fs_read_file(path, 1 << 24, &data, &n, &err))
		return -1;
	int hits = 0;
	unsigned char *u = (unsigned char *)data;
	for (size_t i = 0; i + 8 <= n; i += 2) {
		bool counting = u[i] >= 4 && u[i] < 60;
		for (int k = 0; k < 4 && counting; k++)
			counting = u[i + 2 * k] == u[i] + k && !u[i + 2 * k + 1];
		if (counting) {
			memset(u + i, 0xff, 8);
			hits++;
		}
	}
	FILE *f = fopen(path, "wb");
	int rc = f && fwrite(data, 1, n, f) == n ? 0 : -1;
	if (f && fclose(f))
		rc = -1;
	hug_free(data);
	return hits > 0 ? rc : -1;
}

/* Mid-run: rank 1's shards open but hold token ids beyond the vocabulary;
 * the error comes inside a training step, where rank 0 waits in a
 * collective, so rank 1 must abort the job (MPI_Abort) with its message. */
TEST(mpi_runtime_rank1_loader_error_aborts_job)
{
	SKIP_UNLESS_CAN_RUN();
	const char *dir = case_fixture("mkdir -p b/data && cp shard-*.h5 b/data/");
	REQUIRE(dir);
	char shard[512];
	for (int s = 0; s < 2; s++) {
		snprintf(shard, sizeof(shard), "%s/b/data/shard-%05d.h5", dir, s);
		REQUIRE(poison_tokens(shard) == 0);
	}
	expect_job_ends(dir, "", "dataset tokens", NULL);
}
