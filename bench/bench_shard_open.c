/* bench_shard_open.c: what checking shards costs when they are opened.
 * Each open validates the file in a forked child first (data/shard_check.c),
 * and fork's cost grows with the parent's memory (page tables), so a
 * trainer that already holds its model pays it per call. This opens N
 * copies of a shard one by one (shard_reader_open: one child each) and all
 * at once (shard_readers_open: one child for the set, as the loader does),
 * in a process holding --hold-mb MiB of touched memory, alternating the two
 * ways --reps times, and prints the median of each.
 *
 *   make bench && build/bin/bench_shard_open [--shards N] [--hold-mb M]
 *       [--reps R] [--shard tests/fixtures/shard_h5py.h5] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../data/shard.h"
#include "bench_util.h"

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void die(const char *what, const struct hug_error *err)
{
	fprintf(stderr, "bench_shard_open: %s: %s\n", what, err->msg);
	exit(1);
}

int main(int argc, char **argv)
{
	long n = bench_arg(argc, argv, "--shards", 20), reps = bench_arg(argc, argv, "--reps", 5);
	long hold_mb = bench_arg(argc, argv, "--hold-mb", 2048);
	const char *src = "tests/fixtures/shard_h5py.h5";
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--shard"))
			src = argv[i + 1];
	if (n < 1 || n > 4096 || reps < 1 || reps > 100 || hold_mb < 0) {
		fprintf(stderr, "bench_shard_open: --shards 1..4096, --reps 1..100, --hold-mb >= 0\n");
		return 2;
	}
	char dir[] = "/tmp/hug-bench-shards-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	char **paths = hug_calloc((size_t)n, sizeof(*paths)), cmd[1024];
	for (int i = 0; i < n; i++) {
		char p[128];
		snprintf(p, sizeof(p), "%s/shard-%05d.h5", dir, i);
		paths[i] = hug_strdup(p);
		snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", src, p);
		if (system(cmd) != 0)
			return 1;
	}
	/* the model a trainer would hold: touched, so its pages are mapped */
	size_t hold = (size_t)hold_mb << 20;
	char *mem = hold ? hug_malloc(hold) : NULL;
	if (mem)
		memset(mem, 1, hold);
	struct shard_reader **r = hug_calloc((size_t)n, sizeof(*r));
	double *one = hug_calloc((size_t)reps, sizeof(double));
	double *all = hug_calloc((size_t)reps, sizeof(double));
	struct hug_error err = { 0 };
	for (int k = 0; k < reps; k++) {
		double t0 = bench_now();
		for (int i = 0; i < n; i++)
			if (shard_reader_open(paths[i], &r[i], &err))
				die(paths[i], &err);
		one[k] = bench_now() - t0;
		for (int i = 0; i < n; i++)
			shard_reader_close(r[i]);
		t0 = bench_now();
		if (shard_readers_open((const char *const *)paths, n, r, &err))
			die("shard_readers_open", &err);
		all[k] = bench_now() - t0;
		for (int i = 0; i < n; i++)
			shard_reader_close(r[i]);
	}
	qsort(one, (size_t)reps, sizeof(double), cmp_d);
	qsort(all, (size_t)reps, sizeof(double), cmp_d);
	printf("%ld shards, holding %ld MiB, %ld reps: one by one %.3f s, in one call %.3f s "
	       "(median), ratio %.1fx\n", n, hold_mb, reps, one[reps / 2], all[reps / 2],
	       one[reps / 2] / all[reps / 2]);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	for (int i = 0; i < n; i++)
		hug_free(paths[i]);
	hug_free(paths);
	hug_free(r);
	hug_free(one);
	hug_free(all);
	hug_free(mem);
	return 0;
}
