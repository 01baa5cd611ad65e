/* test_pin.c: pins what hug computes today, bit for bit, so a refactor that
 * must not change behaviour (issue 15, the model interface) is proven not
 * to: BLOOM logits, loss and gradients of the HF fixtures (f32 and f64), a
 * 30-step training run from scratch (losses and final weights) and a LoRA
 * fine-tuning run (adapter weights), each as a SHA-256 of the bytes, held
 * against tests/fixtures/pin/pins.txt.
 *
 * Bits depend on the BLAS kernels: the pins record the OpenBLAS core they
 * were made on, and on another core the bitwise comparison is skipped (the
 * parity tests still hold the numbers to HF's within tolerance there).
 * HUG_PIN_WRITE=1 rewrites the file (only when the behaviour is meant to
 * change, with the reason in the commit). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../base/alloc.h"
#include "../base/panic.h"
#include "../base/fs.h"
#include "../base/sha256.h"
#include "../io/hf_checkpoint.h"
#include "bloom_util.h"
#include "../io/safetensors.h"
#include "../nn/bloom.h"
#include "harness.h"
#include "peft_fixture.h"
#include "train_fixture.h"

#define PINS "tests/fixtures/pin/pins.txt"

/* The OpenBLAS kernel set the bits come from. */
static const char *machine(void)
{
	return openblas_get_corename();
}

/* Checks (or, with HUG_PIN_WRITE, records) that pin `name` is `hex`. */
static void pin(const char *name, const char *hex)
{
	if (getenv("HUG_PIN_WRITE")) {
		char *old = fs_exists(PINS) ? test_read_file(PINS, NULL) : NULL;
		FILE *f = fopen(PINS, "w");
		REQUIRE(f);
		fprintf(f, "machine %s\n", machine());
		/* keep the other pins, replace this one */
		for (char *l = old ? strtok(old, "\n") : NULL; l; l = strtok(NULL, "\n")) {
			size_t n = strlen(name);
			if (strncmp(l, "machine ", 8) && !(strncmp(l, name, n) == 0 && l[n] == ' '))
				fprintf(f, "%s\n", l);
		}
		fprintf(f, "%s %s\n", name, hex);
		fclose(f);
		free(old);
		return;
	}
	char *text = test_read_file(PINS, NULL);
	REQUIRE(text);
	char want_machine[128] = "", want[128] = "";
	for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
		size_t n = strlen(name);
		if (strncmp(l, "machine ", 8) == 0)
			snprintf(want_machine, sizeof(want_machine), "%s", l + 8);
		else if (strncmp(l, name, n) == 0 && l[n] == ' ')
			snprintf(want, sizeof(want), "%s", l + n + 1);
	}
	free(text);
	if (!want[0]) {
		test_fail_at(__FILE__, __LINE__, "%s: no pin \"%s\"", PINS, name);
		return;
	}
	if (strcmp(want_machine, machine())) {
		printf("(pins made on OpenBLAS core %s, this is %s: bits not compared) ",
		       want_machine, machine());
		return;
	}
	if (strcmp(want, hex))
		test_fail_at(__FILE__, __LINE__, "%s: sha256 %s, pinned %s", name, hex, want);
}

static void hash_tensor(struct sha256 *s, const struct tensor *t)
{
	HUG_ASSERT(tensor_is_contiguous(t) && t->device == DEV_CPU);
	sha256_update(s, t->data, (size_t)tensor_numel(t) * dtype_size(t->dtype));
}

static void digest(struct sha256 *s, char hex[65])
{
	uint8_t d[32];
	sha256_final(s, d);
	sha256_hex(d, hex);
}

/* Forward, loss and backward of one HF fixture: the pins of the logits,
 * the loss and every parameter gradient (in parameter order). */
static void pin_fixture(const char *dir, enum dtype dt)
{
	struct hug_error err = { 0 };
	struct bloom_model m;
	struct st_file ref;
	struct arena inputs, step;
	struct ag_ctx ctx;
	char path[512], name[256], hex[65];
	arena_init(&inputs, "inputs", 0, NULL);
	arena_init(&step, "step", 0, NULL);
	ag_ctx_init(&ctx, &step);
	ctx.training = false;
	REQUIRE(hf_bloom_load(dir, dt, true, &m, &err) == 0);
	snprintf(path, sizeof(path), "%s/reference.safetensors", dir);
	REQUIRE(st_open(&ref, path, &err) == 0);
	struct tensor *in[3];
	const char *keys[3] = { "input_ids", "attention_mask", "labels" };
	for (int i = 0; i < 3; i++) {
		const struct st_tensor *s = st_find(&ref, keys[i]);
		REQUIRE(s);
		in[i] = tensor_new(&inputs, DT_I32, s->ndim, s->shape);
		REQUIRE(st_tensor_load(s, in[i], &err) == 0);
	}
	struct tensor *logits = bloom_forward(&ctx, &m, in[0], in[1]);
	struct tensor *loss = bloom_lm_loss(&ctx, logits, in[2]);
	if (loss)
		ag_backward(&ctx, loss);
	REQUIRE(!ag_failed(&ctx));
	const char *base = strrchr(dir, '/') + 1;
	struct sha256 s;
	sha256_init(&s);
	hash_tensor(&s, logits);
	digest(&s, hex);
	snprintf(name, sizeof(name), "%s.%s.logits", base, dtype_name(dt));
	pin(name, hex);
	sha256_init(&s);
	hash_tensor(&s, loss);
	digest(&s, hex);
	snprintf(name, sizeof(name), "%s.%s.loss", base, dtype_name(dt));
	pin(name, hex);
	sha256_init(&s);
	for (int i = 0; i < m.table.n; i++)
		hash_tensor(&s, m.table.items[i].t->grad);
	digest(&s, hex);
	snprintf(name, sizeof(name), "%s.%s.grads", base, dtype_name(dt));
	pin(name, hex);
	st_close(&ref);
	bloom_model_free(&m);
	arena_free(&step);
	arena_free(&inputs);
}

TEST(pin_bloom_logits_loss_grads)
{
	pin_fixture("tests/fixtures/bloom-tiny-a", DT_F32);
	pin_fixture("tests/fixtures/bloom-tiny-a", DT_F64);
	pin_fixture("tests/fixtures/bloom-tiny-b", DT_F32);
	pin_fixture("tests/fixtures/bloom-tiny-b", DT_F64);
}

/* SHA-256 of a file's bytes into hex; false when it cannot be read. */
static bool file_hash(const char *path, char hex[65])
{
	struct hug_error err = { 0 };
	if (sha256_file(path, hex, NULL, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return false;
	}
	return true;
}

/* The "loss" text of every training record of run_dir/metrics.jsonl,
 * hashed in order (the text holds all the digits hug prints). */
static void losses_hash(const char *run_dir, int steps, char hex[65])
{
	char *path = fs_join(run_dir, "metrics.jsonl");
	char *text = test_read_file(path, NULL);
	hug_free(path);
	struct sha256 s;
	sha256_init(&s);
	int n = 0;
	for (char *l = text ? strtok(text, "\n") : NULL; l; l = strtok(NULL, "\n")) {
		char *x = strstr(l, "\"loss\":");
		if (strncmp(l, "{\"step\":", 8) || !x)
			continue;
		size_t len = strcspn(x + 7, ",}");
		sha256_update(&s, x + 7, len);
		sha256_update(&s, "\n", 1);
		n++;
	}
	free(text);
	CHECK(n == steps);
	digest(&s, hex);
}

/* Pins the losses of the run in run_dir (`steps` records) as
 * "<name>.losses" and the SHA-256 of run_dir/<file> as "<name>.<what>". */
static void pin_run(const char *run_dir, int steps, const char *name, const char *file,
		    const char *what)
{
	char hex[65], key[128], *path = fs_join(run_dir, file);
	losses_hash(run_dir, steps, hex);
	snprintf(key, sizeof(key), "%s.losses", name);
	pin(key, hex);
	snprintf(key, sizeof(key), "%s.%s", name, what);
	if (file_hash(path, hex))
		pin(key, hex);
	hug_free(path);
}

TEST(pin_train_30_steps)
{
	if (!getenv("HUG_BIN"))
		SKIP("HUG_BIN not set (run through make test)");
	const char *dir = train_fixture_setup(8000, ", \"hidden_dropout\": 0.1, "
					      "\"attention_dropout\": 0.1",
					      ", \"steps\": 30, \"save_every\": 30");
	REQUIRE(dir);
	char log[8192], run[600];
	REQUIRE(train_fixture_hug(log, sizeof(log), "train %s/recipe.json", dir) == 0);
	snprintf(run, sizeof(run), "%s/run", dir);
	pin_run(run, 30, "train30", "checkpoint-30/model.safetensors", "model");
	train_fixture_rmtree(dir);
}

TEST(pin_lora_adapter)
{
	if (!getenv("HUG_BIN"))
		SKIP("HUG_BIN not set (run through make test)");
	const char *dir = peft_train_setup("{\"r\": 4, \"alpha\": 8, \"dropout\": 0.1, "
					   "\"target_modules\": [\"query_key_value\", \"dense\", "
					   "\"dense_4h_to_h\"]}", 12, NULL);
	REQUIRE(dir);
	char log[16384], run[600];
	REQUIRE(train_fixture_hug(log, sizeof(log), "train %s/recipe.json", dir) == 0);
	snprintf(run, sizeof(run), "%s/run", dir);
	pin_run(run, 12, "lora12", "checkpoint-12/adapter_model.safetensors", "adapter");
	train_fixture_rmtree(dir);
}
