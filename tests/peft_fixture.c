/* peft_fixture.c: set-up shared by the LoRA tests. */
#include "peft_fixture.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../io/hf_checkpoint.h"
#include "bloom_util.h"
#include "harness.h"
#include "train_fixture.h"

const struct peft_fixture peft_fixtures[] = {
	{ "tests/fixtures/peft/bloom-tiny-a-lora", "tests/fixtures/bloom-tiny-a" },
	{ "tests/fixtures/peft/bloom-tiny-b-rslora", "tests/fixtures/bloom-tiny-b" },
	{ "tests/fixtures/peft/bloom-tiny-a-regex", "tests/fixtures/bloom-tiny-a" },
	{ "tests/fixtures/peft/llama-tiny-a-lora", "tests/fixtures/llama-tiny-a" },
	{ "tests/fixtures/peft/llama-tiny-a-all", "tests/fixtures/llama-tiny-a" },
	{ "tests/fixtures/peft/qwen2-tiny-lora", "tests/fixtures/qwen2-tiny" },
};
const int n_peft_fixtures = (int)(sizeof(peft_fixtures) / sizeof(peft_fixtures[0]));

struct tensor *peft_ref(struct peft_run *r, const char *key, enum dtype dt)
{
	struct hug_error err = { 0 };
	const struct st_tensor *s = st_find(&r->ref, key);
	if (!s || s->ndim > TENSOR_MAX_DIMS) {
		test_fail_at(__FILE__, __LINE__, "%s: no usable \"%s\"", r->ref.path, key);
		return NULL;
	}
	struct tensor *t = tensor_new(&r->mem, dt, s->ndim, s->shape);
	if (st_tensor_load(s, t, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return NULL;
	}
	return t;
}

bool peft_run_open(struct peft_run *r, const struct peft_fixture *f, enum dtype dt)
{
	struct hug_error err = { 0 };
	char path[512];
	memset(r, 0, sizeof(*r));
	arena_init(&r->mem, "ref", 0, NULL);
	arena_init(&r->step, "step", 0, NULL);
	ag_ctx_init(&r->ctx, &r->step);
	r->ctx.training = false;
	if (hf_model_load(f->base, dt, false, &r->m, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return false;
	}
	r->have_model = true;
	if (lora_load(&r->lm, &r->m, f->adapter, true, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return false;
	}
	r->have_lora = true;
	snprintf(path, sizeof(path), "%s/reference.safetensors", f->adapter);
	if (st_open(&r->ref, path, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return false;
	}
	r->ids = peft_ref(r, "input_ids", DT_I32);
	r->mask = peft_ref(r, "attention_mask", DT_I32);
	r->labels = peft_ref(r, "labels", DT_I32);
	return r->ids && r->mask && r->labels;
}

void peft_run_free(struct peft_run *r)
{
	if (r->have_lora)
		lora_model_free(&r->lm);
	if (r->have_model)
		model_free(&r->m);
	st_close(&r->ref);
	arena_free(&r->step);
	arena_free(&r->mem);
	memset(r, 0, sizeof(*r));
}

static double *values(const struct tensor *t)
{
	double *p = hug_malloc((size_t)tensor_numel(t) * sizeof(double));
	tensor_read_f64(t, p);
	return p;
}

static bool shapes_agree(const struct tensor *a, const struct tensor *b)
{
	char d0[64], d1[64];
	if (tensor_same_shape(a, b))
		return true;
	test_fail_at(__FILE__, __LINE__, "shapes differ: %s and %s",
		     tensor_describe(a, d0, sizeof(d0)), tensor_describe(b, d1, sizeof(d1)));
	return false;
}

double peft_relerr(const struct tensor *a, const struct tensor *b, const struct tensor *keep)
{
	if (!shapes_agree(a, b))
		return -1;
	int64_t n = tensor_numel(a), inner = a->ndim == 3 ? a->shape[2] : 1;
	const int32_t *k = keep ? keep->data : NULL;
	double *x = values(a), *y = values(b), diff = 0, ref = 0;
	for (int64_t i = 0; i < n; i++) {
		if (k && !k[i / inner])
			continue;
		double d = fabs(x[i] - y[i]);
		diff = d > diff || isnan(d) ? (isnan(d) ? INFINITY : d) : diff;
		ref = fabs(y[i]) > ref ? fabs(y[i]) : ref;
	}
	hug_free(x);
	hug_free(y);
	return ref > 0 ? diff / ref : diff;
}

double peft_maxabs(const struct tensor *a, const struct tensor *b)
{
	if (!shapes_agree(a, b))
		return -1;
	int64_t n = tensor_numel(a);
	double *x = values(a), *y = values(b), diff = 0;
	for (int64_t i = 0; i < n; i++) {
		double d = fabs(x[i] - y[i]);
		diff = d > diff || isnan(d) ? (isnan(d) ? INFINITY : d) : diff;
	}
	hug_free(x);
	hug_free(y);
	return diff;
}

static int save_base(const char *dir)
{
	struct bloom_model m;
	struct hug_error err = { 0 };
	struct bloom_config cfg = bloom_config_make(64, 32, 2, 4);
	cfg.initializer_range = 0.05;
	bloom_model_init(&m, &cfg, DT_F32, false);
	bloom_model_init_weights(&m, 11);
	char *path = fs_join(dir, "base");
	int rc = hf_bloom_save(&m, path, DT_F32, 0, &err);
	if (rc)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	hug_free(path);
	bloom_model_free(&m);
	return rc;
}

const char *peft_train_setup(const char *peft, int steps, const char *train_extra)
{
	const char *dir = train_fixture_shards(1, 20000);
	if (!dir || save_base(dir))
		return NULL;
	char path[256];
	snprintf(path, sizeof(path), "%s/recipe.json", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return NULL;
	fprintf(f,
		"{\"model\": {\"from_pretrained\": \"%s/base\"},\n"
		" \"data\": {\"train\": [{\"path\": \"%s/shard-*.h5\"}], \"seq_len\": 32},\n"
		" \"optim\": {\"lr\": 0.03, \"weight_decay\": 0.01},\n"
		" \"schedule\": {\"warmup_steps\": 5, \"min_lr\": 0.001},\n"
		" \"batch\": {\"micro_batch_size\": 4, \"global_batch_size\": 8},\n"
		" \"peft\": %s,\n"
		" \"train\": {\"out_dir\": \"%s/run\", \"log_every\": 1, \"steps\": %d%s}}\n",
		dir, dir, peft, dir, steps, train_extra ? train_extra : "");
	return fclose(f) == 0 ? dir : NULL;
}
