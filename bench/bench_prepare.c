/* bench_prepare.c: tokenizer and `hug prepare` throughput in MB/s of input
 * text. Encodes the inputs on one thread (with the word cache of a
 * tok_encoder, and without it through tokenizer_encode), then runs
 * prepare_run over them with 1, 2, ... threads into a scratch directory
 * under /tmp (removed afterwards) and prints MB/s and tokens/s for each.
 *
 *   make bench && build/bin/bench_prepare --tokenizer T.json [--threads N]
 *       [--format auto|text|jsonl] FILES...
 *
 * bench/prepare.sh runs it on the multilingual demo corpus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../data/prepare.h"
#include "../data/tokenizer.h"
#include "bench_util.h"

#define MAX_FILES 256

static void die(const char *what, const struct hug_error *err)
{
	fprintf(stderr, "bench_prepare: %s: %s\n", what, err->msg);
	exit(1);
}

/* Encodes all texts in 64 KiB slices; returns the tokens made. */
static int64_t encode_all(const struct tokenizer *tok, struct tok_encoder *enc, char **text,
			  size_t *len, int n)
{
	struct tok_ids ids = { 0 };
	int64_t total = 0;
	for (int f = 0; f < n; f++) {
		for (size_t off = 0; off < len[f]; off += 1 << 16) {
			size_t k = len[f] - off < (1 << 16) ? len[f] - off : 1 << 16;
			ids.n = 0;
			if (enc)
				tok_encoder_encode(enc, text[f] + off, k, &ids);
			else
				tokenizer_encode(tok, text[f] + off, k, &ids);
			total += ids.n;
		}
	}
	tok_ids_free(&ids);
	return total;
}

static void bench_encode(const struct tokenizer *tok, const char *const *files, int n)
{
	char *text[MAX_FILES];
	size_t len[MAX_FILES], bytes = 0;
	struct hug_error err = { 0 };
	for (int f = 0; f < n; f++) {
		if (fs_read_file(files[f], SIZE_MAX, &text[f], &len[f], &err))
			die("read", &err);
		bytes += len[f];
	}
	struct tok_encoder *enc = tok_encoder_new(tok);
	for (int cached = 1; cached >= 0; cached--) {
		double t0 = bench_now();
		int64_t n_tok = encode_all(tok, cached ? enc : NULL, text, len, n);
		double dt = bench_now() - t0;
		printf("encode,   1 thread, %-9s %8.2f MB/s  %6.2f M tokens/s  (%.1f MB, %lld tokens, "
		       "%.2f bytes/token)\n", cached ? "cached:" : "uncached:", (double)bytes / 1e6 / dt,
		       (double)n_tok / 1e6 / dt, (double)bytes / 1e6, (long long)n_tok,
		       (double)bytes / (double)n_tok);
	}
	tok_encoder_free(enc);
	for (int f = 0; f < n; f++)
		hug_free(text[f]);
}

static void bench_run(const struct tokenizer *tok, const char *const *files, int n,
		      int threads, enum prepare_format fmt)
{
	char dir[] = "/tmp/hug-bench-prepare-XXXXXX", cmd[128];
	struct hug_error err = { 0 };
	struct prepare_stats st;
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	struct prepare_opts o = prepare_opts_default();
	o.out_dir = dir;
	o.threads = threads;
	o.format = fmt;
	o.log = NULL;
	if (prepare_run(tok, files, n, &o, &st, &err))
		die("prepare", &err);
	printf("prepare, %2d thread%s        %8.2f MB/s  %6.2f M tokens/s  (%lld docs, %lld tokens, "
	       "%lld shards, %.2f s)\n", threads, threads == 1 ? ": " : "s:",
	       (double)st.bytes / 1e6 / st.seconds, (double)st.tokens / 1e6 / st.seconds,
	       (long long)st.docs, (long long)st.tokens, (long long)st.shards, st.seconds);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "bench_prepare: could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
	const char *tok_path = NULL, *files[MAX_FILES];
	int n = 0, max_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	enum prepare_format fmt = PREPARE_AUTO;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc)
			tok_path = argv[++i];
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			max_threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--format") && i + 1 < argc)
			fmt = !strcmp(argv[++i], "text") ? PREPARE_TEXT :
			      !strcmp(argv[i], "jsonl") ? PREPARE_JSONL : PREPARE_AUTO;
		else if (n < MAX_FILES)
			files[n++] = argv[i];
	}
	if (!tok_path || !n || max_threads < 1) {
		fprintf(stderr, "usage: bench_prepare --tokenizer T.json [--threads N] "
				"[--format auto|text|jsonl] FILES...\n");
		return 2;
	}
	struct tokenizer *tok;
	struct hug_error err = { 0 };
	if (tokenizer_load(tok_path, &tok, &err))
		die("tokenizer", &err);
	printf("tokenizer %s: %lld tokens, %lld merges\n", tok_path,
	       (long long)tokenizer_vocab_size(tok), (long long)tokenizer_n_merges(tok));
	bench_encode(tok, files, n);
	for (int t = 1; t <= max_threads; t *= 2)
		bench_run(tok, files, n, t, fmt);
	if (max_threads & (max_threads - 1))
		bench_run(tok, files, n, max_threads, fmt);
	tokenizer_free(tok);
	return 0;
}
