/* test_cli_eval_generate.c: `hug eval` and `hug generate` as a user runs
 * them, on the bloom-tiny-a fixture; the expected numbers come from
 * transformers (BloomForCausalLM loss on each sequence, and greedy
 * generate()) run by hand on the same inputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static const char *hug_bin(void)
{
	return getenv("HUG_BIN");
}

TEST(cli_eval_matches_transformers_loss)
{
	if (!hug_bin())
		SKIP("HUG_BIN not set (run through make test)");
	char in[] = "/tmp/hug-eval-XXXXXX", cmd[1024], out[4096];
	int fd = mkstemp(in);
	REQUIRE(fd >= 0);
	close(fd);
	test_write_file(in, "[[1,5,9,20,3,44],[7,7,8,2]]");
	snprintf(cmd, sizeof(cmd), "%s eval --model tests/fixtures/bloom-tiny-a --input %s",
		 hug_bin(), in);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	/* transformers: 5.516322135925293 and 5.053295612335205 (f32, within 1e-5) */
	const char *per = strstr(out, "per_sequence");
	REQUIRE(per);
	const char *l1 = strstr(per, "\"loss\": "), *l2 = l1 ? strstr(l1 + 1, "\"loss\": ") : NULL;
	REQUIRE(l1 && l2);
	CHECK_NEAR(strtod(l1 + 8, NULL), 5.516322135925293, 5e-5);
	CHECK_NEAR(strtod(l2 + 8, NULL), 5.053295612335205, 5e-5);
	CHECK(strstr(out, "\"tokens\": 8") != NULL);
	/* after the JSON, on stderr: the timing over the 10 ids read */
	const char *end = strstr(out, "]}\n");
	CHECK(end && strstr(end, "hug eval: 2 sequences, 10 tokens in ") &&
	      strstr(end, " tokens/s)"));
	/* bad input: an id outside the vocabulary (97) */
	test_write_file(in, "[[1,5,97]]");
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, in) && strstr(out, "[0][2]"));
	test_write_file(in, "[[1,5]");
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, in) != NULL);
	unlink(in);
}

TEST(cli_generate_greedy_matches_transformers)
{
	if (!hug_bin())
		SKIP("HUG_BIN not set (run through make test)");
	char cmd[1024], out[4096];
	snprintf(cmd, sizeof(cmd), "%s generate --model tests/fixtures/bloom-tiny-a "
		 "--prompt-ids 1,5,9 --max-new-tokens 10 --greedy", hug_bin());
	CHECK(test_run_command(cmd, out, sizeof(out)) == 0);
	/* transformers generate(do_sample=False) gives ten 11s; stdout holds
	 * them alone, the timing follows on stderr */
	static const char want[] = "11,11,11,11,11,11,11,11,11,11\n";
	CHECK(strncmp(out, want, strlen(want)) == 0);
	CHECK(strstr(out + strlen(want), "hug generate: 10 new tokens in ") &&
	      strstr(out, " tokens/s), time to first token "));
	snprintf(cmd, sizeof(cmd), "%s generate --model tests/fixtures/bloom-tiny-a "
		 "--prompt-ids 1,5,x", hug_bin());
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "--prompt-ids") != NULL);
	snprintf(cmd, sizeof(cmd), "%s generate --model /nonexistent --prompt-ids 1", hug_bin());
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "/nonexistent") != NULL);
	snprintf(cmd, sizeof(cmd), "%s generate --model tests/fixtures/bloom-tiny-a "
		 "--prompt-ids 1 --top-p 2", hug_bin());
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "top-p") != NULL);
}

/* --device: a bad name, and cuda on a machine without a GPU (or a build
 * without CUDA), are clean errors (exit 2) naming the flag. */
TEST(cli_eval_generate_device_errors)
{
	if (!hug_bin())
		SKIP("HUG_BIN not set (run through make test)");
	char cmd[1024], out[4096];
	snprintf(cmd, sizeof(cmd), "%s generate --model tests/fixtures/bloom-tiny-a "
		 "--prompt-ids 1,5 --device tpu", hug_bin());
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "--device: expected cpu, cuda or cuda:N, got \"tpu\"") != NULL);
	char in[] = "/tmp/hug-eval-XXXXXX";
	int fd = mkstemp(in);
	REQUIRE(fd >= 0);
	close(fd);
	test_write_file(in, "[[1,5,9]]");
	snprintf(cmd, sizeof(cmd), "%s eval --model tests/fixtures/bloom-tiny-a --input %s "
		 "--device cuda:x", hug_bin(), in);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 2);
	CHECK(strstr(out, "\"cuda:x\"") != NULL);
	unlink(in);
	snprintf(cmd, sizeof(cmd), "%s generate --model tests/fixtures/bloom-tiny-a "
		 "--prompt-ids 1,5 --device cuda", hug_bin());
	int rc = test_run_command(cmd, out, sizeof(out));
	if (rc == 0)
		SKIP("a GPU is present (the CUDA tests cover --device cuda)");
	CHECK(rc == 2);
	CHECK(strstr(out, "--device cuda") != NULL);
	CHECK(strstr(out, "no CUDA device") || strstr(out, "built without CUDA"));
}
