/* harness.c: registration, running and reporting for tests/harness.h. */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../base/alloc.h"
#include "../base/fs.h"

#define MAX_TESTS 1024

static struct {
	const char *name;
	test_fn fn;
} tests[MAX_TESTS];
static int n_tests;
static int cur_failed, cur_skipped;
static const char *cur_skip_why;

void test_register(const char *name, test_fn fn)
{
	if (n_tests == MAX_TESTS) {
		fprintf(stderr, "harness: more than %d tests\n", MAX_TESTS);
		exit(2);
	}
	tests[n_tests].name = name;
	tests[n_tests].fn = fn;
	n_tests++;
}

void test_fail_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "    %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cur_failed = 1;
}

void test_skip(const char *why)
{
	cur_skip_why = why;
	cur_skipped = 1;
}

int test_failed_now(void)
{
	return cur_failed;
}

int test_run_command(const char *cmd, char *out, size_t n)
{
	char full[4096];
	snprintf(full, sizeof(full), "%s 2>&1", cmd);
	FILE *p = popen(full, "r");
	if (!p)
		return -1;
	size_t got = fread(out, 1, n - 1, p);
	out[got] = '\0';
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int by_name(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;
	return strcmp(*x, *y);
}

int main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	int passed = 0, failed = 0, skipped = 0;
	/* registration order depends on the link; run in name order */
	qsort(tests, (size_t)n_tests, sizeof(tests[0]), by_name);
	for (int i = 0; i < n_tests; i++) {
		if (filter && !strstr(tests[i].name, filter))
			continue;
		cur_failed = cur_skipped = 0;
		printf("%-60s ", tests[i].name);
		fflush(stdout);
		tests[i].fn();
		if (cur_failed) {
			printf("FAIL\n");
			fprintf(stderr, "FAIL %s\n", tests[i].name);
			failed++;
		} else if (cur_skipped) {
			printf("skip (%s)\n", cur_skip_why);
			skipped++;
		} else {
			printf("ok\n");
			passed++;
		}
		fflush(stdout);
	}
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed ? 1 : 0;
}

char *test_read_file(const char *path, size_t *len)
{
	char *text = NULL;
	struct hug_error err = { 0 };
	if (fs_read_file(path, (size_t)1 << 30, &text, len, &err))
		return NULL;
	return text;
}

void test_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

char *test_unhex(const char *hex, size_t *len)
{
	size_t n = strlen(hex) / 2;
	char *out = hug_malloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (char)v;
	}
	out[n] = '\0';
	*len = n;
	return out;
}

const char *test_shard_glob(void)
{
	static char dir[] = "/tmp/hug-shards-XXXXXX";
	static char glob_path[64];
	if (!glob_path[0]) {
		if (!mkdtemp(dir))
			return NULL;
		char p[64];
		snprintf(p, sizeof(p), "%s/a.h5", dir);
		test_write_file(p, "");
		snprintf(glob_path, sizeof(glob_path), "%s/*.h5", dir);
	}
	return glob_path;
}
