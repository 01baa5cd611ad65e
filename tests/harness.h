/* harness.h: a tiny test harness. A test file defines tests with
 *
 *   TEST(layernorm_matches_fixture) { CHECK(x == 1); CHECK_NEAR(a, b, 1e-6); }
 *
 * which register themselves at start-up; main() in tests/harness.c runs them (all, or
 * those whose name contains argv[1]) and ends with "N passed, N failed".
 * A failed CHECK prints file:line and the expression, marks the test failed
 * and lets it go on; SKIP("why") ends a test as skipped. */
#ifndef HUG_TESTS_HARNESS_H
#define HUG_TESTS_HARNESS_H

#include <math.h>
#include <stdio.h>

typedef void (*test_fn)(void);

void test_register(const char *name, test_fn fn);
void test_fail_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void test_skip(const char *why);
int test_failed_now(void);

/* Runs `cmd` through the shell with stderr joined to stdout, capturing at
 * most n - 1 bytes of the output into out (NUL-terminated); returns the
 * exit status, or -1 when it could not run or was killed. */
int test_run_command(const char *cmd, char *out, size_t n);

/* The whole file at `path` (NUL-terminated, hug_free it; its length in
 * *len when len is not NULL), or NULL when it cannot be read
 * (base/fs.h's fs_read_file, up to 1 GiB). */
char *test_read_file(const char *path, size_t *len);

/* Writes `text` to `path` (replacing it); a failure shows up in the test
 * that reads the file. */
void test_write_file(const char *path, const char *text);

/* A data glob that recipe parsing accepts without reading the file: every
 * .h5 file of a temporary directory holding one empty a.h5, made on the
 * first call (the same path after). NULL when the directory cannot be
 * made. */
const char *test_shard_glob(void);

/* The bytes a hex string ("48656c6c6f") stands for, in a new NUL-terminated
 * buffer (hug_free it); their count in *len. */
char *test_unhex(const char *hex, size_t *len);

#define TEST(name)                                                             \
	static void test_##name(void);                                         \
	__attribute__((constructor)) static void test_register_##name(void)    \
	{                                                                      \
		test_register(#name, test_##name);                             \
	}                                                                      \
	static void test_##name(void)

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			test_fail_at(__FILE__, __LINE__, "CHECK(%s)", #cond);  \
	} while (0)

/* |a - b| <= tol, or both NaN is a failure too. */
#define CHECK_NEAR(a, b, tol)                                                  \
	do {                                                                   \
		double a_ = (double)(a), b_ = (double)(b);                     \
		if (!(fabs(a_ - b_) <= (tol)))                                 \
			test_fail_at(__FILE__, __LINE__,                       \
				     "%s = %.10g, %s = %.10g, |diff| %.3g > %.3g", \
				     #a, a_, #b, b_, fabs(a_ - b_), (double)(tol)); \
	} while (0)

/* Fails with a message and returns from the test. */
#define REQUIRE(cond)                                                          \
	do {                                                                   \
		if (!(cond)) {                                                 \
			test_fail_at(__FILE__, __LINE__, "REQUIRE(%s)", #cond); \
			return;                                                \
		}                                                              \
	} while (0)

#define SKIP(why)                                                              \
	do {                                                                   \
		test_skip(why);                                                \
		return;                                                        \
	} while (0)

#endif
