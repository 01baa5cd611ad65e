/* test_peft_train.c: LoRA fine-tuning with the trainer on the counting
 * corpus: the base is frozen (no gradients, no optimizer state, weights
 * bit-identical after training), only adapter tensors are in the optimizer
 * and in optimizer.safetensors, the loss falls, a checkpoint is a PEFT
 * adapter directory, resume is exact (adapter dropout included), the
 * memory held is measured against full fine-tuning, and bad recipes give
 * errors naming the key. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../io/hf_checkpoint.h"
#include "bloom_util.h"
#include "../io/safetensors.h"
#include "../peft/lora_io.h"
#include "../train/checkpoint.h"
#include "../train/trainer.h"
#include "harness.h"
#include "peft_fixture.h"
#include "train_fixture.h"

#define PEFT_QKV_FC1 "{\"r\": 4, \"alpha\": 8, \"dropout\": 0.1, " \
		     "\"target_modules\": [\"query_key_value\", \"dense_h_to_4h\"]}"

/* All base parameter bytes, concatenated (hug_malloc'd). */
static unsigned char *snapshot(const struct param_table *pt, size_t *n)
{
	*n = 0;
	for (int i = 0; i < pt->n; i++)
		*n += tensor_nbytes(pt->items[i].t);
	unsigned char *buf = hug_malloc(*n), *p = buf;
	for (int i = 0; i < pt->n; i++) {
		memcpy(p, pt->items[i].t->data, tensor_nbytes(pt->items[i].t));
		p += tensor_nbytes(pt->items[i].t);
	}
	return buf;
}

static bool steps(struct trainer *t, int n, double *first, double *last)
{
	struct hug_error err = { 0 };
	*first = *last = 0;
	for (int s = 0; s < n; s++) {
		struct step_result res;
		if (trainer_step(t, &res, &err)) {
			test_fail_at(__FILE__, __LINE__, "%s", err.msg);
			return false;
		}
		if (s < 10)
			*first += res.loss / 10;
		if (s >= n - 10)
			*last += res.loss / 10;
	}
	return true;
}

static void check_optimizer_file(const char *ckpt, int n_params)
{
	struct st_file f;
	struct hug_error err = { 0 };
	char *path = fs_join(ckpt, "optimizer.safetensors");
	REQUIRE(st_open(&f, path, &err) == 0);
	hug_free(path);
	CHECK(f.n == 2 * n_params); /* exp_avg and exp_avg_sq of each adapter tensor */
	for (int i = 0; i < f.n; i++)
		if (strncmp(f.tensors[i].name, "exp_avg", 7) || !strstr(f.tensors[i].name, ".lora_"))
			test_fail_at(__FILE__, __LINE__, "optimizer state for %s", f.tensors[i].name);
	st_close(&f);
}

static void check_checkpoint(const char *dir, const char *ckpt, int n_params)
{
	static const char *const present[] = { LORA_CONFIG_FILE, LORA_WEIGHTS_FILE,
					       "optimizer.safetensors", "trainer_state.json",
					       "recipe.json" };
	static const char *const absent[] = { "model.safetensors", "config.json" };
	for (size_t i = 0; i < 5; i++) {
		char *p = fs_join(ckpt, present[i]);
		if (!fs_exists(p))
			test_fail_at(__FILE__, __LINE__, "%s is missing", p);
		hug_free(p);
	}
	for (size_t i = 0; i < 2; i++) {
		char *p = fs_join(ckpt, absent[i]);
		if (fs_exists(p))
			test_fail_at(__FILE__, __LINE__, "%s: a LoRA checkpoint holds no base", p);
		hug_free(p);
	}
	check_optimizer_file(ckpt, n_params);
	/* the checkpoint is an adapter directory PEFT's loader (and hug's) reads */
	char base[256];
	struct bloom_model m;
	struct lora_model lm;
	struct hug_error err = { 0 };
	snprintf(base, sizeof(base), "%s/base", dir);
	REQUIRE(hf_bloom_load(base, DT_F32, false, &m, &err) == 0);
	CHECK(lora_load(&lm, BLOOM_M(&m), ckpt, false, &err) == 0);
	if (err.set)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	else
		CHECK(lm.cfg.base_model && !strcmp(lm.cfg.base_model, base));
	lora_model_free(&lm);
	/* the adapter's checksums (trainer_state.json) are verified on load */
	char *w = fs_join(ckpt, "adapter_model.safetensors");
	FILE *f = fopen(w, "r+b");
	REQUIRE(f);
	fseek(f, -3, SEEK_END);
	int c = fgetc(f);
	fseek(f, -3, SEEK_END);
	fputc(c ^ 1, f);
	fclose(f);
	struct hug_error bad = { 0 };
	CHECK(lora_load(&lm, BLOOM_M(&m), ckpt, false, &bad) == -1);
	CHECK(strstr(bad.msg, "adapter_model.safetensors") && strstr(bad.msg, "expected"));
	hug_free(w);
	bloom_model_free(&m);
}

TEST(peft_train_freezes_base_and_trains_adapters)
{
	const char *dir = peft_train_setup(PEFT_QKV_FC1, 60, NULL);
	REQUIRE(dir);
	struct recipe r;
	struct trainer t;
	REQUIRE(train_fixture_open(dir, NULL, 0, &r, &t) == 0);
	REQUIRE(t.lora);
	int n_params = t.lora->table.n;
	CHECK(n_params == 8 && t.opt.n == n_params);
	for (int i = 0; i < t.opt.n; i++)
		CHECK(t.opt.slots[i].param->t == t.lora->table.items[i].t);
	CHECK(arena_capacity(model_parts(&t.model).grads) == 0);
	for (int i = 0; i < model_params(&t.model)->n; i++)
		CHECK(!model_params(&t.model)->items[i].t->grad && !model_params(&t.model)->items[i].t->requires_grad);
	size_t nb;
	unsigned char *before = snapshot(model_params(&t.model), &nb);
	double first, last;
	REQUIRE(steps(&t, 60, &first, &last));
	printf("(loss %.3f -> %.3f) ", first, last);
	CHECK(last < first - 0.2);
	size_t na;
	unsigned char *after = snapshot(model_params(&t.model), &na);
	CHECK(na == nb && memcmp(before, after, nb) == 0); /* bit-identical base */
	double bmax = 0;
	for (int i = 0; i < t.lora->n; i++) {
		const struct tensor *b = t.lora->sites[i].ad.b;
		for (int64_t k = 0; k < tensor_numel(b); k++)
			bmax = fmax(bmax, fabs(((float *)b->data)[k]));
	}
	CHECK(bmax > 1e-3); /* B moved off zero */
	struct hug_error err = { 0 };
	char *ckpt = NULL;
	REQUIRE(checkpoint_save(&t, NULL, &ckpt, &err) == 0);
	check_checkpoint(dir, ckpt, n_params);
	hug_free(ckpt);
	hug_free(before);
	hug_free(after);
	trainer_free(&t);
	recipe_free(&r);
	train_fixture_rmtree(dir);
}

/* Bytes held for training (parameters, gradients, optimizer state). */
static int64_t held(const struct trainer *t)
{
	int64_t b = (int64_t)(arena_capacity(model_parts(&t->model).params) + arena_capacity(model_parts(&t->model).grads) +
			      arena_capacity(&t->opt.state));
	if (t->lora)
		b += (int64_t)(arena_capacity(&t->lora->params) + arena_capacity(&t->lora->grads));
	return b;
}

TEST(peft_train_memory_against_full_fine_tuning)
{
	const char *dir = peft_train_setup(PEFT_QKV_FC1, 20, NULL);
	REQUIRE(dir);
	struct recipe r, rf;
	struct trainer t, tf;
	const char *full[] = { "peft=null" };
	REQUIRE(train_fixture_open(dir, NULL, 0, &r, &t) == 0);
	REQUIRE(train_fixture_open(dir, full, 1, &rf, &tf) == 0);
	int64_t lora = held(&t), whole = held(&tf);
	struct lora_memory est, est_full;
	struct model_config mc;
	model_config_of(&t.model, &mc);
	lora_memory_estimate(&t.lora->cfg, &mc, 4, 2, &est, &est_full);
	int64_t e = est.params + est.grads + est.optim, ef = est_full.params + est_full.grads +
							  est_full.optim;
	printf("(held: LoRA %lld B, full %lld B, saved %.1f%%; computed: %lld B and %lld B) ",
	       (long long)lora, (long long)whole, 100.0 * (double)(whole - lora) / (double)whole,
	       (long long)e, (long long)ef);
	CHECK(lora < whole / 2);
	/* arenas add alignment and tensor headers to the computed bytes */
	CHECK(lora >= e && (double)lora < 1.6 * (double)e);
	CHECK(whole >= ef && (double)whole < 1.6 * (double)ef);
	trainer_free(&t);
	trainer_free(&tf);
	recipe_free(&r);
	recipe_free(&rf);
	train_fixture_rmtree(dir);
}

/* The adapters' bytes after n steps: straight, or n/2, a checkpoint, a new
 * trainer resumed from it, n/2 more. */
static unsigned char *run_adapters(const char *dir, int n, bool resume, size_t *len)
{
	struct recipe r;
	struct trainer t;
	struct hug_error err = { 0 };
	double a, b;
	if (train_fixture_open(dir, NULL, 0, &r, &t))
		return NULL;
	bool ok = steps(&t, resume ? n / 2 : n, &a, &b);
	if (ok && resume) {
		char *ckpt = NULL;
		ok = checkpoint_save(&t, NULL, &ckpt, &err) == 0;
		trainer_free(&t);
		recipe_free(&r);
		ok = ok && train_fixture_open(dir, NULL, 0, &r, &t) == 0;
		if (ok && checkpoint_load(&t, ckpt, NULL, &err)) {
			test_fail_at(__FILE__, __LINE__, "%s", err.msg);
			ok = false;
		}
		ok = ok && steps(&t, n - n / 2, &a, &b);
		hug_free(ckpt);
	}
	unsigned char *out = ok ? snapshot(&t.lora->table, len) : NULL;
	trainer_free(&t);
	recipe_free(&r);
	return out;
}

TEST(peft_train_resume_is_exact)
{
	const char *dir = peft_train_setup(PEFT_QKV_FC1, 20, NULL);
	REQUIRE(dir);
	char run[256];
	size_t na = 0, nb = 0;
	unsigned char *straight = run_adapters(dir, 20, false, &na);
	snprintf(run, sizeof(run), "%s/run", dir);
	train_fixture_rmtree(run);
	unsigned char *resumed = run_adapters(dir, 20, true, &nb);
	CHECK(straight && resumed && na == nb && memcmp(straight, resumed, na) == 0);
	hug_free(straight);
	hug_free(resumed);
	train_fixture_rmtree(dir);
}

TEST(peft_train_bad_recipes)
{
	static const struct {
		const char *set, *expect;
	} cases[] = {
		{ "peft.target_modules=[\"query_key_value\", \"qkv\"]",
		  "recipe.json: peft.target_modules[1]: \"qkv\" matches no linear layer of BLOOM" },
		{ "model.from_pretrained=null", "recipe.json: peft: LoRA adapts a pretrained model" },
	};
	const char *dir = peft_train_setup(PEFT_QKV_FC1, 20, NULL);
	REQUIRE(dir);
	for (int i = 0; i < 2; i++) {
		char path[256];
		struct recipe r;
		struct trainer t;
		struct hug_error err = { 0 };
		const char *ov[] = { cases[i].set, "model.vocab_size=64", "model.hidden_size=32",
				     "model.n_layer=2", "model.n_head=4" };
		snprintf(path, sizeof(path), "%s/recipe.json", dir);
		if (recipe_load(path, ov, i ? 5 : 1, 1, &r, &err)) {
			/* targets are checked as the recipe is read */
			if (i != 0 || !strstr(err.msg, cases[i].expect))
				test_fail_at(__FILE__, __LINE__, "%s", err.msg);
			continue;
		}
		CHECK(trainer_init(&t, &r, &err) == -1);
		if (!strstr(err.msg, cases[i].expect))
			test_fail_at(__FILE__, __LINE__, "got \"%s\"", err.msg);
		recipe_free(&r);
	}
	train_fixture_rmtree(dir);
}

TEST(peft_demo_recipe_parses)
{
	const char *dir = train_fixture_shards(1, 2000);
	REQUIRE(dir);
	char train[256];
	snprintf(train, sizeof(train), "data.train=[{\"path\": \"%s/shard-*.h5\"}]", dir);
	/* the demo base comes from `make demo`; a fixture stands in for it */
	const char *ov[] = { train, "data.tokenizer=null",
			     "model.from_pretrained=\"tests/fixtures/bloom-tiny-a\"" };
	struct recipe r;
	struct hug_error err = { 0 };
	REQUIRE(recipe_load("recipes/demo-lora.json", ov, 3, 1, &r, &err) == 0);
	CHECK(r.peft.enabled && r.peft.r == 8 && r.peft.alpha == 16 && r.peft.n_targets == 4);
	CHECK(r.steps > 0 && r.seq_len == 128);
	recipe_free(&r);
	if (err.set)
		printf("%s\n", err.msg);
	train_fixture_rmtree(dir);
}
