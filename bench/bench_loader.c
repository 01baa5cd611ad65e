/* bench_loader.c: shard writer and loader throughput. Writes a few shards
 * of random tokens (10M tokens in 4 shards by default) into a scratch
 * directory under /tmp, then times data/loader over the training split with
 * a consumer that reads every token of every batch, synchronously and with
 * prefetch, and optionally with simulated compute per batch (--work-us) to
 * show how much of the read time prefetch hides.
 *
 *   make bench && build/bin/bench_loader [--tokens N] [--shards N]
 *       [--seq-len T] [--batch B] [--vocab V] [--mask] [--work-us U]
 *       [--batches N] [--keep] */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../data/loader.h"
#include "../data/shard.h"
#include "bench_util.h"

struct opts {
	int64_t tokens, seq_len, batch, vocab, batches;
	int shards, work_us;
	bool mask, keep;
};

static void die(const char *what, const struct hug_error *err)
{
	fprintf(stderr, "bench_loader: %s: %s\n", what, err->msg);
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: see the top of bench/bench_loader.c\n");
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .tokens = 10000000, .seq_len = 2048, .batch = 8,
			    .vocab = 50257, .shards = 4 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--mask")) {
			o->mask = true;
			continue;
		}
		if (!strcmp(a, "--keep")) {
			o->keep = true;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		long long v = atoll(argv[++i]);
		if (!strcmp(a, "--tokens"))
			o->tokens = v;
		else if (!strcmp(a, "--shards"))
			o->shards = (int)v;
		else if (!strcmp(a, "--seq-len"))
			o->seq_len = v;
		else if (!strcmp(a, "--batch"))
			o->batch = v;
		else if (!strcmp(a, "--vocab"))
			o->vocab = v;
		else if (!strcmp(a, "--batches"))
			o->batches = v;
		else if (!strcmp(a, "--work-us"))
			o->work_us = (int)v;
		else
			usage();
	}
	if (o->tokens < 1 || o->shards < 1 || o->seq_len < 1 || o->batch < 1)
		usage();
}

/* Writes o->shards shards of random documents (mean 1000 tokens). */
static void write_shards(const struct opts *o, const char *dir)
{
	struct shard_meta m = { .vocab_size = o->vocab, .eos_id = 0 };
	struct hug_error err = { 0 };
	snprintf(m.tokenizer_hash, sizeof(m.tokenizer_hash), "sha256:bench");
	snprintf(m.source, sizeof(m.source), "bench");
	int32_t *doc = hug_malloc(4000 * sizeof(int32_t));
	uint8_t *mask = hug_malloc(4000);
	uint64_t x = 42;
	double t0 = bench_now();
	for (int f = 0; f < o->shards; f++) {
		char path[512];
		struct shard_writer *w;
		snprintf(path, sizeof(path), "%s/shard-%05d.h5", dir, f);
		if (shard_writer_open(&w, path, &m, o->mask, &err) < 0)
			die("open", &err);
		int64_t want = o->tokens / o->shards;
		while (shard_writer_tokens(w) < want) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			int64_t n = 1 + (int64_t)((x >> 33) % 2000);
			if (n > want - shard_writer_tokens(w))
				n = want - shard_writer_tokens(w);
			for (int64_t i = 0; i < n; i++) {
				x = x * 6364136223846793005ull + 1ull;
				doc[i] = (int32_t)((x >> 33) % (uint64_t)o->vocab);
				mask[i] = (x >> 20) & 1;
			}
			if (shard_writer_append(w, doc, mask, n, &err) < 0)
				die("append", &err);
		}
		if (shard_writer_close(w, &err) < 0)
			die("close", &err);
	}
	double dt = bench_now() - t0;
	printf("write: %d shards, %lld tokens in %.3f s: %.1f M tokens/s\n",
	       o->shards, (long long)o->tokens, dt, o->tokens / dt / 1e6);
	hug_free(doc);
	hug_free(mask);
}

static void spin_us(int us)
{
	double end = bench_now() + us * 1e-6;
	while (bench_now() < end)
		;
}

static void run(const struct opts *o, const char *glob, int prefetch,
		int work_us)
{
	struct loader_source src = { .glob = glob, .weight = 1 };
	struct loader_config c = { .sources = &src, .n_sources = 1,
		.seq_len = o->seq_len, .batch_size = o->batch, .world = 1,
		.seed = 7, .prefetch = prefetch };
	struct hug_error err = { 0 };
	struct loader *L;
	double t0 = bench_now();
	if (loader_open(&c, &L, &err) < 0)
		die("loader_open", &err);
	double t_open = bench_now() - t0;
	struct loader_source_stats st;
	loader_stats(L, 0, &st);
	int64_t nb = o->batches ? o->batches : st.n_train / o->batch;
	size_t n = (size_t)(o->batch * o->seq_len);
	int32_t *in = hug_malloc(n * sizeof(int32_t));
	int32_t *tg = hug_malloc(n * sizeof(int32_t));
	uint64_t sum = 0;
	t0 = bench_now();
	for (int64_t b = 0; b < nb; b++) {
		if (loader_next(L, in, tg, &err) < 0)
			die("loader_next", &err);
		for (size_t i = 0; i < n; i++)
			sum += (uint32_t)in[i] + (uint32_t)tg[i];
		if (work_us)
			spin_us(work_us);
	}
	double dt = bench_now() - t0;
	double tok = (double)nb * (double)n;
	printf("loader: prefetch %d, work %5d us/batch: %lld batches of "
	       "%lldx%lld in %.3f s: %7.1f M tokens/s, %8.1f us/batch "
	       "(open %.1f ms; checksum %llu)\n", prefetch, work_us,
	       (long long)nb, (long long)o->batch, (long long)o->seq_len, dt,
	       tok / dt / 1e6, dt / (double)nb * 1e6, t_open * 1e3,
	       (unsigned long long)(sum % 1000));
	hug_free(in);
	hug_free(tg);
	loader_close(L);
}

/* Removes the scratch directory and the files in it. */
static void remove_dir(const char *dir)
{
	char p[1024];
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	struct opts o;
	char dir[] = "/tmp/hug_bench_loader_XXXXXX", glob[600];
	parse(argc, argv, &o);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	printf("shards in %s (vocab %lld: %s tokens, loss mask %s)\n", dir,
	       (long long)o.vocab, o.vocab <= SHARD_U16_MAX_VOCAB ? "uint16" :
	       "int32", o.mask ? "yes" : "no");
	write_shards(&o, dir);
	snprintf(glob, sizeof(glob), "%s/shard-*.h5", dir);
	run(&o, glob, 0, 0);
	run(&o, glob, 4, 0);
	if (o.work_us) {
		run(&o, glob, 0, o.work_us);
		run(&o, glob, 4, o.work_us);
	}
	if (!o.keep)
		remove_dir(dir);
	return 0;
}
