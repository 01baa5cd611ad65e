/* bench_allreduce.c: all-reduce bandwidth through hug's communicator
 * (parallel/comm.h) on host buffers, the way nccl-tests reports it: for
 * each size, the mean time of an in-place sum all-reduce over the world,
 * algorithm bandwidth (size / time) and bus bandwidth (algbw * 2(n-1)/n,
 * the per-link traffic of a ring, comparable across rank counts). Times
 * are the slowest rank's. Each size is first checked once against the
 * exact sum. Only rank 0 prints.
 *
 *   make bench && mpirun -np 2 --oversubscribe build/bin/bench_allreduce
 *       [--min-bytes 4096] [--max-bytes 268435456] [--dtype f32|f64|i32]
 *       [--seconds 0.25] [--warmup 2] [--nonblocking]
 *
 * --seconds is the time aimed at per size (at least 3 and at most 10000
 * timed iterations); --nonblocking times comm_iallreduce + comm_wait, the
 * path of data-parallel gradient buckets. As root, Open MPI also needs
 * OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/alloc.h"
#include "../parallel/comm.h"
#include "bench_util.h"

struct opts {
	int64_t min_bytes, max_bytes;
	enum dtype dt;
	double seconds;
	int warmup;
	bool nonblocking;
};

static void usage(void)
{
	fprintf(stderr, "usage: see the top of bench/bench_allreduce.c\n");
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .min_bytes = 4096, .max_bytes = 256 << 20, .dt = DT_F32,
			    .seconds = 0.25, .warmup = 2 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--nonblocking")) {
			o->nonblocking = true;
			continue;
		}
		if (!v)
			usage();
		if (!strcmp(a, "--min-bytes"))
			o->min_bytes = atoll(v);
		else if (!strcmp(a, "--max-bytes"))
			o->max_bytes = atoll(v);
		else if (!strcmp(a, "--seconds"))
			o->seconds = atof(v);
		else if (!strcmp(a, "--warmup"))
			o->warmup = atoi(v);
		else if (!strcmp(a, "--dtype"))
			o->dt = !strcmp(v, "f64") ? DT_F64 : !strcmp(v, "i32") ? DT_I32 :
				!strcmp(v, "f32") ? DT_F32 : DT_COUNT;
		else
			usage();
		i++;
	}
	if (o->dt == DT_COUNT || o->min_bytes < 4 || o->max_bytes < o->min_bytes ||
	    o->seconds <= 0 || o->warmup < 0)
		usage();
}

/* Element i of rank r's contribution: small integers, exact in every dtype. */
static double value(int r, int64_t i)
{
	return (double)((r + 1) * (1 + i % 7));
}

static void fill(void *buf, int64_t n, enum dtype dt, int r)
{
	for (int64_t i = 0; i < n; i++) {
		double x = r < 0 ? 0.0 : value(r, i);
		if (dt == DT_F32)
			((float *)buf)[i] = (float)x;
		else if (dt == DT_F64)
			((double *)buf)[i] = x;
		else
			((int32_t *)buf)[i] = (int32_t)x;
	}
}

/* Number of wrong elements after one all-reduce of fill(.., rank). */
static int64_t check(const void *buf, int64_t n, enum dtype dt, int size)
{
	int64_t bad = 0;
	for (int64_t i = 0; i < n; i++) {
		double want = 0, got;
		for (int r = 0; r < size; r++)
			want += value(r, i);
		if (dt == DT_F32)
			got = ((const float *)buf)[i];
		else if (dt == DT_F64)
			got = ((const double *)buf)[i];
		else
			got = ((const int32_t *)buf)[i];
		bad += got != want;
	}
	return bad;
}

static void once(const struct comm *w, void *buf, int64_t n, enum dtype dt, bool nb)
{
	if (nb) {
		struct comm_request r;
		comm_iallreduce(w, buf, n, dt, DEV_CPU, &r);
		comm_wait(&r);
	} else {
		comm_allreduce(w, buf, n, dt, COMM_SUM);
	}
}

/* Mean seconds per all-reduce over iters, the slowest rank's. */
static double timed(const struct comm *w, void *buf, int64_t n, enum dtype dt, bool nb,
		    int iters)
{
	comm_barrier(w);
	double t0 = bench_now();
	for (int k = 0; k < iters; k++)
		once(w, buf, n, dt, nb);
	double t = (bench_now() - t0) / iters;
	comm_allreduce(w, &t, 1, DT_F64, COMM_MAX);
	return t;
}

static void run_size(const struct comm *w, void *buf, int64_t bytes, const struct opts *o)
{
	size_t esz = dtype_size(o->dt);
	int64_t n = bytes / (int64_t)esz;

	fill(buf, n, o->dt, w->rank);
	once(w, buf, n, o->dt, o->nonblocking);
	int64_t wrong = check(buf, n, o->dt, w->size);
	int32_t bad = wrong > INT32_MAX ? INT32_MAX : (int32_t)wrong;
	comm_allreduce(w, &bad, 1, DT_I32, COMM_SUM);

	/* Zeros from here on: repeated in-place sums stay finite. */
	fill(buf, n, o->dt, -1);
	for (int k = 0; k < o->warmup; k++)
		once(w, buf, n, o->dt, o->nonblocking);
	/* Calibrate on a twentieth of the time aimed at. timed() returns the
	 * same (slowest) time on every rank, so all ranks agree on iters. */
	double est;
	for (int k = 1;; k *= 2) {
		est = timed(w, buf, n, o->dt, o->nonblocking, k);
		if (est * k >= o->seconds / 20 || k >= 10000)
			break;
	}
	int iters = (int)(o->seconds / (est > 1e-9 ? est : 1e-9));
	iters = iters < 3 ? 3 : iters > 10000 ? 10000 : iters;
	double t = timed(w, buf, n, o->dt, o->nonblocking, iters);

	double algbw = (double)(n * (int64_t)esz) / t / 1e9;
	double busbw = algbw * 2.0 * (w->size - 1) / w->size;
	if (w->rank == 0)
		printf("%12lld %11lld %6d %12.1f %11.3f %11.3f  %s\n", (long long)(n * (int64_t)esz),
		       (long long)n, iters, t * 1e6, algbw, busbw, bad ? "WRONG" : "ok");
	fflush(stdout);
	if (bad) {
		if (w->rank == 0)
			fprintf(stderr, "bench_allreduce: %ld wrong elements at %lld bytes\n",
				(long)bad, (long long)bytes);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	struct opts o;
	struct parallel p;
	struct hug_error err = { 0 };

	parse(argc, argv, &o);
	if (parallel_init(&p, &err)) {
		fprintf(stderr, "bench_allreduce: %s\n", err.msg);
		return 1;
	}
	const struct comm *w = &p.world;
	if (w->size < 2) {
		fprintf(stderr, "bench_allreduce: a world of one process has nothing to "
				"measure: run under mpirun -np 2 (or more)\n");
		parallel_finalize(&p);
		return 1;
	}
	void *buf = hug_malloc((size_t)o.max_bytes);
	memset(buf, 0, (size_t)o.max_bytes);
	if (w->rank == 0) {
		printf("# hug all-reduce over MPI, host buffers, in place, sum, %s, %d ranks%s\n",
		       dtype_name(o.dt), w->size,
		       o.nonblocking ? ", comm_iallreduce + comm_wait" : "");
		printf("# busbw = algbw * 2(n-1)/n; GB/s = 1e9 bytes/s; time = slowest rank\n");
		printf("%12s %11s %6s %12s %11s %11s  %s\n", "bytes", "count", "iters",
		       "time(us)", "algbw(GB/s)", "busbw(GB/s)", "check");
	}
	for (int64_t b = o.min_bytes; b <= o.max_bytes; b *= 2)
		run_size(w, buf, b, &o);
	hug_free(buf);
	parallel_finalize(&p);
	return 0;
}
