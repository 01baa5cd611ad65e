/* test_cuda_cli.c: `hug eval` and `hug generate` with --device cuda give
 * what transformers gives (the numbers of test_cli_eval_generate.c): the
 * per-sequence losses within 5e-5, greedy continuation token for token,
 * and dumped logits within 1e-5 of the CPU's. Without a GPU every test
 * reports itself skipped. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../io/safetensors.h"
#include "harness.h"
#include "test_cuda_util.h"

/* max |a - b| / max |b| over the "logits" of two eval dumps. */
static double dump_diff(const char *a, const char *b)
{
	struct st_file fa, fb;
	struct hug_error err = { 0 };
	if (st_open(&fa, a, &err) || st_open(&fb, b, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return INFINITY;
	}
	const struct st_tensor *ta = st_find(&fa, "logits"), *tb = st_find(&fb, "logits");
	double num = 0, den = 0;
	if (ta && tb && ta->nbytes == tb->nbytes && ta->dtype == DT_F32) {
		const char *x = ta->data, *y = tb->data; /* maybe unaligned */
		for (size_t i = 0; i < ta->nbytes / 4; i++) {
			float u, v;
			memcpy(&u, x + 4 * i, 4);
			memcpy(&v, y + 4 * i, 4);
			num = fmax(num, fabs((double)u - v));
			den = fmax(den, fabs((double)v));
		}
	} else {
		num = INFINITY;
	}
	st_close(&fa);
	st_close(&fb);
	return den > 0 ? num / den : num;
}

TEST(cuda_cli_eval_and_generate)
{
	CUDA_TEST_BEGIN();
	const char *bin = getenv("HUG_BIN");
	if (!bin)
		SKIP("HUG_BIN not set (run through make test-gpu)");
	char in[] = "/tmp/hug-eval-XXXXXX", cmd[1024], out[4096];
	int fd = mkstemp(in);
	REQUIRE(fd >= 0);
	close(fd);
	test_write_file(in, "[[1,5,9,20,3,44],[7,7,8,2]]");
	snprintf(cmd, sizeof(cmd), "%s eval --model tests/fixtures/bloom-tiny-a --input %s "
		 "--device cuda --dump-logits %s.gpu", bin, in, in);
	int rc = test_run_command(cmd, out, sizeof(out));
	if (rc != 0)
		test_fail_at(__FILE__, __LINE__, "%s: exit %d: %s", cmd, rc, out);
	const char *per = strstr(out, "per_sequence");
	const char *l1 = per ? strstr(per, "\"loss\": ") : NULL;
	const char *l2 = l1 ? strstr(l1 + 1, "\"loss\": ") : NULL;
	REQUIRE(l1 && l2);
	CHECK_NEAR(strtod(l1 + 8, NULL), 5.516322135925293, 5e-5);
	CHECK_NEAR(strtod(l2 + 8, NULL), 5.053295612335205, 5e-5);
	snprintf(cmd, sizeof(cmd), "%s eval --model tests/fixtures/bloom-tiny-a --input %s "
		 "--dump-logits %s.cpu", bin, in, in);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	char a[64], b[64];
	snprintf(a, sizeof(a), "%s.gpu", in);
	snprintf(b, sizeof(b), "%s.cpu", in);
	double d = dump_diff(a, b);
	printf("(logits gpu vs cpu %.2e) ", d);
	CHECK(d <= 1e-5);
	unlink(a);
	unlink(b);
	unlink(in);
	snprintf(cmd, sizeof(cmd), "%s generate --model tests/fixtures/bloom-tiny-a "
		 "--prompt-ids 1,5,9 --max-new-tokens 10 --greedy --device cuda", bin);
	rc = test_run_command(cmd, out, sizeof(out));
	if (rc != 0)
		test_fail_at(__FILE__, __LINE__, "%s: exit %d: %s", cmd, rc, out);
	CHECK(strncmp(out, "11,11,11,11,11,11,11,11,11,11\nhug generate: ", 44) == 0);
}
