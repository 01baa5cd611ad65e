/* test_peft_cli.c: LoRA as a user runs it: `hug train` with a peft recipe
 * (PEFT's trainable-parameter line, a checkpoint in PEFT's layout), `hug
 * export` in the three formats (f32 adapter byte-identical to the
 * checkpoint's, a sharded bf16 merged model with its index, the base), `hug
 * generate --adapter` equal to generating with the merged export, and the
 * usage errors. Needs HUG_BIN (set by make test). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "harness.h"
#include "peft_fixture.h"
#include "train_fixture.h"

#define hug train_fixture_hug

static bool same_file(const char *a, const char *b)
{
	char *x = NULL, *y = NULL;
	size_t nx = 0, ny = 0;
	struct hug_error err = { 0 };
	bool ok = fs_read_file(a, 1 << 26, &x, &nx, &err) == 0 &&
		  fs_read_file(b, 1 << 26, &y, &ny, &err) == 0 && nx == ny &&
		  memcmp(x, y, nx) == 0;
	hug_free(x);
	hug_free(y);
	return ok;
}

static void check_exports(const char *dir, const char *ckpt)
{
	char out[8192], a[1024], b[1024];
	CHECK(hug(out, sizeof(out), "export %s --format peft --out %s/x/peft", ckpt, dir) == 0);
	snprintf(a, sizeof(a), "%s/adapter_model.safetensors", ckpt);
	snprintf(b, sizeof(b), "%s/x/peft/adapter_model.safetensors", dir);
	CHECK(same_file(a, b));
	snprintf(a, sizeof(a), "%s/adapter_config.json", ckpt);
	snprintf(b, sizeof(b), "%s/x/peft/adapter_config.json", dir);
	CHECK(same_file(a, b));

	CHECK(hug(out, sizeof(out), "export %s --format merged --dtype bf16 --max-shard-bytes "
		  "20000 --out %s/x/merged16", ckpt, dir) == 0);
	snprintf(a, sizeof(a), "%s/x/merged16", dir);
	CHECK(fs_exists_in(a, "model.safetensors.index.json") &&
	      fs_exists_in(a, "model-00001-of-00004.safetensors") && !fs_exists_in(a, "model.safetensors"));
	CHECK(hug(out, sizeof(out), "info %s", a) == 0);

	CHECK(hug(out, sizeof(out), "export %s --format hf --out %s/x/hf", ckpt, dir) == 0);
	snprintf(a, sizeof(a), "%s/base/model.safetensors", dir);
	snprintf(b, sizeof(b), "%s/x/hf/model.safetensors", dir);
	CHECK(same_file(a, b)); /* a LoRA checkpoint's hf export is its base */

	/* a whole model (no adapter) in f16 */
	CHECK(hug(out, sizeof(out), "export tests/fixtures/bloom-tiny-a --format hf --dtype f16 "
		  "--out %s/x/f16", dir) == 0);
	snprintf(a, sizeof(a), "%s/x/f16", dir);
	CHECK(hug(out, sizeof(out), "info %s", a) == 0 && strstr(out, "F16") != NULL);
}

static void check_generate(const char *dir, const char *ckpt)
{
	char out[8192], with_adapter[256], merged[256];
	CHECK(hug(out, sizeof(out), "export %s --format merged --out %s/x/merged", ckpt, dir) == 0);
	CHECK(hug(with_adapter, sizeof(with_adapter), "generate --model %s/base --adapter %s "
		  "--prompt-ids 5,6,7,8 --greedy --no-stop --max-new-tokens 12", dir, ckpt) == 0);
	CHECK(hug(merged, sizeof(merged), "generate --model %s/x/merged --prompt-ids 5,6,7,8 "
		  "--greedy --no-stop --max-new-tokens 12", dir) == 0);
	/* the ids (stdout, the first line); the timing follows */
	with_adapter[strcspn(with_adapter, "\n")] = '\0';
	merged[strcspn(merged, "\n")] = '\0';
	CHECK(strcmp(with_adapter, merged) == 0);
	printf("(generated %s) ", with_adapter);
}

static void check_errors(const char *dir, const char *ckpt)
{
	char out[8192];
	CHECK(hug(out, sizeof(out), "export %s/base --format peft --out %s/x/e", dir, dir) == 2);
	CHECK(strstr(out, "no adapter_config.json here: --format peft needs a LoRA") != NULL);
	CHECK(hug(out, sizeof(out), "export %s --format gguf --out %s/x/e", ckpt, dir) == 2);
	CHECK(strstr(out, "--format: expected hf, peft or merged, got \"gguf\"") != NULL);
	CHECK(hug(out, sizeof(out), "export %s --format hf --dtype f64 --out %s/x/e", ckpt, dir) == 2);
	CHECK(strstr(out, "--dtype: expected f32, bf16 or f16") != NULL);
	CHECK(hug(out, sizeof(out), "export %s --format merged --base /nonexistent --out %s/x/e",
		  ckpt, dir) == 2);
	CHECK(strstr(out, "/nonexistent") != NULL);
	CHECK(hug(out, sizeof(out), "export %s --format hf", ckpt) == 2);
	CHECK(hug(out, sizeof(out), "generate --model %s/base --adapter %s/base --prompt-ids 5",
		  dir, dir) == 2);
	CHECK(strstr(out, "adapter_config.json") != NULL);
}

TEST(peft_cli_train_export_generate)
{
	if (!getenv("HUG_BIN"))
		SKIP("HUG_BIN not set (run through make test)");
	const char *dir = peft_train_setup("{\"r\": 4, \"alpha\": 8, \"target_modules\": "
					   "[\"query_key_value\", \"dense_h_to_4h\"]}", 12, NULL);
	REQUIRE(dir);
	char out[16384], ckpt[512];
	CHECK(hug(out, sizeof(out), "train %s/recipe.json", dir) == 0);
	CHECK(strstr(out, "trainable params: 2,304 || all params: 29,888 || trainable%: 7.7088\n"));
	CHECK(strstr(out, "memory for training: ") == NULL); /* the plan replaces it */
	CHECK(strstr(out, "hug train: memory per rank") != NULL);
	CHECK(strstr(out, "2,304 trainable of 29,888 (7.709%), LoRA\n") != NULL);
	snprintf(ckpt, sizeof(ckpt), "%s/run/checkpoint-12", dir);
	REQUIRE(fs_exists_in(ckpt, "adapter_model.safetensors"));
	check_exports(dir, ckpt);
	check_generate(dir, ckpt);
	check_errors(dir, ckpt);
	train_fixture_rmtree(dir);
}
