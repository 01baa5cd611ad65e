/* test_cuda_bloom.c: BLOOM on the GPU.
 *
 * - The Hugging Face fixtures (tests/fixtures/bloom-tiny-*) in f32: logits,
 *   loss and every parameter gradient against transformers' values, with
 *   the CPU test's tolerances (1e-5, 1e-5, 1e-4 relative).
 * - A tiny model trained on the GPU: steps 2+ allocate nothing (neither
 *   host memory nor device memory), two runs with the same seed give the
 *   same bits (dropout on), the loss curve and the weights follow the CPU
 *   run of the same steps (SGD with momentum, dropout on, so the dropout
 *   masks must agree), and the global gradient norm matches the CPU
 *   optimizer's.
 * - bf16 mixed precision: f32 master weights cast to bf16 on the tape, the
 *   forward and backward in bf16, against the CPU in f32 (a smoke test of
 *   the whole bf16 path with loose tolerances, stated below).
 *
 * Without a GPU every test reports itself skipped. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../base/alloc.h"
#include "../io/hf_checkpoint.h"
#include "bloom_util.h"
#include "../io/safetensors.h"
#include "../nn/bloom.h"
#include "../nn/bloom_device.h"
#include "../optim/optimizer.h"
#include "harness.h"
#include "test_cuda_util.h"

#ifdef HUG_CUDA
#include "../autograd/cuda/cuda_api.h"

/* ---- the fixtures ---- */

static const char *const fixtures[] = {
	"tests/fixtures/bloom-tiny-a",
	"tests/fixtures/bloom-tiny-b",
};

/* Reference tensor `key` of `ref` as a new host tensor of dtype dt in a,
 * or NULL after a failure. */
static struct tensor *ref_tensor(const struct st_file *ref, struct arena *a,
				 const char *key, enum dtype dt, const char *dir)
{
	struct hug_error err = { 0 };
	const struct st_tensor *s = st_find(ref, key);
	if (!s || s->ndim > TENSOR_MAX_DIMS) {
		test_fail_at(__FILE__, __LINE__, "%s/reference.safetensors: no usable \"%s\"",
			     dir, key);
		return NULL;
	}
	struct tensor *t = tensor_new(a, dt, s->ndim, s->shape);
	if (st_tensor_load(s, t, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return NULL;
	}
	return t;
}

static double *host_doubles(const struct tensor *t)
{
	int64_t n = tensor_numel(t);
	double *v = hug_malloc((size_t)(n ? n : 1) * sizeof(double));
	tensor_read_f64(t, v);
	return v;
}

/* Compares device tensor `got` with host reference `want`; false (after a
 * failure naming `what`) when the shapes differ or the error exceeds tol. */
static double compare_dev(const char *dir, const char *what, const struct tensor *got,
			  const struct tensor *want, double tol)
{
	char d0[96], d1[96];
	if (tensor_numel(got) != tensor_numel(want)) {
		test_fail_at(__FILE__, __LINE__, "%s: %s is %s, reference %s", dir, what,
			     tensor_describe(got, d0, sizeof(d0)),
			     tensor_describe(want, d1, sizeof(d1)));
		return INFINITY;
	}
	int64_t n = tensor_numel(want), worst;
	double *g = cuda_test_read(got), *w = host_doubles(want);
	double err = cuda_test_rel_err(g, w, n, &worst);
	if (!(err <= tol))
		test_fail_at(__FILE__, __LINE__, "%s (cuda f32): %s: error %.3g > %.3g "
			     "(element %lld of %lld: got %.17g, want %.17g)", dir, what, err,
			     tol, (long long)worst, (long long)n, g[worst], w[worst]);
	hug_free(g);
	hug_free(w);
	return err;
}

static void gpu_fixture(const char *dir)
{
	struct hug_error err = { 0 };
	struct bloom_model hm, dm;
	struct st_file ref = { 0 };
	struct arena host, inputs, step;
	char path[512], key[PARAM_NAME_MAX + 8];
	if (hf_bloom_load(dir, DT_F32, false, &hm, &err)) {
		test_fail_at(__FILE__, __LINE__, "hf_bloom_load(%s): %s", dir, err.msg);
		return;
	}
	bloom_model_to_device(&dm, &hm, hug_cuda_allocator(), true);
	arena_init(&host, "host", 0, NULL);
	arena_init(&inputs, "inputs", 0, hug_cuda_allocator());
	arena_init(&step, "step", 0, hug_cuda_allocator());
	snprintf(path, sizeof(path), "%s/reference.safetensors", dir);
	if (st_open(&ref, path, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		goto out;
	}
	struct tensor *ids = ref_tensor(&ref, &host, "input_ids", DT_I32, dir);
	struct tensor *mask = ref_tensor(&ref, &host, "attention_mask", DT_I32, dir);
	struct tensor *labels = ref_tensor(&ref, &host, "labels", DT_I32, dir);
	struct tensor *want_logits = ref_tensor(&ref, &host, "logits", DT_F64, dir);
	struct tensor *want_loss = ref_tensor(&ref, &host, "loss", DT_F64, dir);
	if (!ids || !mask || !labels || !want_logits || !want_loss)
		goto out;
	struct ag_ctx ctx;
	ag_ctx_init(&ctx, &step);
	ctx.training = false;
	struct tensor *logits = bloom_forward(&ctx, &dm, cuda_test_upload(&inputs, ids, DT_I32),
					      cuda_test_upload(&inputs, mask, DT_I32));
	struct tensor *loss = bloom_lm_loss(&ctx, logits,
					    cuda_test_upload(&inputs, labels, DT_I32));
	if (loss)
		ag_backward(&ctx, loss);
	if (ag_failed(&ctx)) {
		test_fail_at(__FILE__, __LINE__, "%s (cuda f32): %s", dir, ctx.err.msg);
		goto out;
	}
	double el = compare_dev(dir, "logits", logits, want_logits, 1e-5);
	double eloss = compare_dev(dir, "loss", loss, want_loss, 1e-5), eg = 0;
	for (int i = 0; i < dm.table.n; i++) {
		const struct param *p = &dm.table.items[i];
		snprintf(key, sizeof(key), "grad.%s", p->name);
		struct tensor *want = ref_tensor(&ref, &host, key, DT_F64, dir);
		if (!want)
			continue;
		double e = compare_dev(dir, key, p->t->grad, want, 1e-4);
		eg = e > eg ? e : eg;
	}
	printf("\n    %s cuda f32: logits %.2e, loss %.2e, grads %.2e", dir, el, eloss, eg);
out:
	st_close(&ref);
	arena_free(&step);
	arena_free(&inputs);
	arena_free(&host);
	bloom_model_free(&dm);
	bloom_model_free(&hm);
}

TEST(cuda_bloom_fixtures_f32)
{
	CUDA_TEST_BEGIN();
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++)
		gpu_fixture(fixtures[i]);
	printf("\n    ");
}

/* ---- training a tiny model ---- */

#define TB 3
#define TT 9

enum opt_kind { OPT_ADAMW, OPT_SGD };

struct run {
	struct bloom_model hm, dm;     /* host (the CPU reference), device */
	struct arena state;            /* device optimizer state */
	struct tensor **m, **v;        /* per parameter of dm.table */
	struct arena host_in, dev_in;
	struct arena hstep, dstep;
	struct ag_ctx hctx, dctx;
	struct tensor *hids, *hmask, *hlabels, *ids, *mask, *labels;
	struct optimizer opt;          /* the CPU's */
	enum opt_kind kind;
	int64_t steps;
};

#define LR_ADAMW 1e-2
#define LR_SGD 5e-2
#define MOMENTUM 0.9

static void run_init(struct run *r, double dropout, enum opt_kind kind)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	struct bloom_config c = bloom_config_make(61, 24, 2, 3);
	c.hidden_dropout = dropout;
	c.attention_dropout = dropout;
	bloom_model_init(&r->hm, &c, DT_F32, true);
	bloom_model_init_weights(&r->hm, 11);
	bloom_model_to_device(&r->dm, &r->hm, hug_cuda_allocator(), true);
	int n = r->dm.table.n;
	r->m = hug_calloc((size_t)n, sizeof(*r->m));
	r->v = hug_calloc((size_t)n, sizeof(*r->v));
	size_t bytes = 2 * (arena_capacity(&r->dm.params) + (size_t)n * 2 * ARENA_ALIGN);
	arena_init(&r->state, "state", bytes, hug_cuda_allocator());
	for (int i = 0; i < n; i++) {
		const struct tensor *p = r->dm.table.items[i].t;
		r->m[i] = tensor_zeros(&r->state, DT_F32, p->ndim, p->shape);
		if (kind == OPT_ADAMW)
			r->v[i] = tensor_zeros(&r->state, DT_F32, p->ndim, p->shape);
	}
	struct optim_config oc = optim_config_adamw();
	if (kind == OPT_SGD)
		oc = (struct optim_config){ .kind = OPTIM_SGD, .momentum = MOMENTUM };
	optim_init(&r->opt, &oc, &r->hm.table);

	arena_init(&r->host_in, "host-in", 0, NULL);
	arena_init(&r->dev_in, "dev-in", 0, hug_cuda_allocator());
	r->hids = tensor_new(&r->host_in, DT_I32, TENSOR_SHAPE(TB, TT));
	r->hmask = tensor_new(&r->host_in, DT_I32, TENSOR_SHAPE(TB, TT));
	r->hlabels = tensor_new(&r->host_in, DT_I32, TENSOR_SHAPE(TB, TT));
	int32_t *ids = r->hids->data, *mask = r->hmask->data, *lab = r->hlabels->data;
	for (int b = 0; b < TB; b++)
		for (int t = 0; t < TT; t++) {
			int j = b * TT + t;
			ids[j] = (j * 13 + 5) % 61;
			mask[j] = !(b == 1 && t < 2); /* row 1 is left-padded */
			lab[j] = mask[j] ? ids[j] : -100;
		}
	r->ids = cuda_test_upload(&r->dev_in, r->hids, DT_I32);
	r->mask = cuda_test_upload(&r->dev_in, r->hmask, DT_I32);
	r->labels = cuda_test_upload(&r->dev_in, r->hlabels, DT_I32);
	/* small first chunks, so step 1 grows both step arenas */
	arena_init(&r->hstep, "hstep", 4096, NULL);
	arena_init(&r->dstep, "dstep", 4096, hug_cuda_allocator());
	ag_ctx_init(&r->hctx, &r->hstep);
	ag_ctx_init(&r->dctx, &r->dstep);
	r->hctx.seed = r->dctx.seed = 2024;
}

static void run_free(struct run *r)
{
	optim_free(&r->opt);
	arena_free(&r->dstep);
	arena_free(&r->hstep);
	arena_free(&r->dev_in);
	arena_free(&r->host_in);
	arena_free(&r->state);
	hug_free(r->m);
	hug_free(r->v);
	bloom_model_free(&r->dm);
	bloom_model_free(&r->hm);
}

/* One GPU step (forward, backward, update, zeroed gradients, reset); the
 * loss, NaN on error. Allocates nothing once the arenas have their size. */
static double gpu_step(struct run *r)
{
	struct ag_ctx *ctx = &r->dctx;
	struct tensor *loss = bloom_lm_loss(ctx, bloom_forward(ctx, &r->dm, r->ids, r->mask),
					    r->labels);
	if (!loss || ag_backward(ctx, loss)) {
		test_fail_at(__FILE__, __LINE__, "gpu step: %s", ctx->err.msg);
		ag_ctx_reset(ctx);
		return NAN;
	}
	double l = tensor_item(loss);
	r->steps++;
	double bc1 = 1.0 - pow(0.9, (double)r->steps), bc2 = 1.0 - pow(0.999, (double)r->steps);
	for (int i = 0; i < r->dm.table.n; i++) {
		const struct param *p = &r->dm.table.items[i];
		int64_t n = tensor_numel(p->t);
		if (r->kind == OPT_ADAMW)
			hug_cuda_adamw_update(n, p->t->data, p->t->grad->data, r->m[i]->data,
					      r->v[i]->data, LR_ADAMW, p->no_decay ? 0.0 : 0.01,
					      0.9, 0.999, 1e-8, bc1, bc2);
		else
			hug_cuda_sgd_update(n, p->t->data, p->t->grad->data, r->m[i]->data,
					    LR_SGD, 0.0, MOMENTUM, false, r->steps == 1);
		hug_cuda_zero(p->t->grad->data, tensor_nbytes(p->t->grad));
	}
	ag_ctx_reset(ctx);
	return l;
}

/* The same step on the CPU with optim/; also returns the gradient norm
 * before the update in *norm when not NULL. */
static double cpu_step(struct run *r, double *norm)
{
	struct ag_ctx *ctx = &r->hctx;
	struct tensor *loss = bloom_lm_loss(ctx, bloom_forward(ctx, &r->hm, r->hids, r->hmask),
					    r->hlabels);
	if (!loss || ag_backward(ctx, loss)) {
		test_fail_at(__FILE__, __LINE__, "cpu step: %s", ctx->err.msg);
		ag_ctx_reset(ctx);
		return NAN;
	}
	double l;
	tensor_read_f64(loss, &l);
	double nm = optim_grad_norm(&r->opt);
	if (norm)
		*norm = nm;
	optim_step(&r->opt, r->kind == OPT_ADAMW ? LR_ADAMW : LR_SGD);
	optim_zero_grad(&r->opt);
	ag_ctx_reset(ctx);
	return l;
}

TEST(cuda_bloom_steps_allocate_nothing_after_step_1)
{
	CUDA_TEST_BEGIN();
	struct run r;
	run_init(&r, 0.1, OPT_ADAMW);
	double l0 = gpu_step(&r);
	REQUIRE(isfinite(l0));
	CHECK(r.dstep.n_chunk_allocs > 1); /* step 1 grew the device arena */
	uint64_t host_allocs = hug_alloc_count(), dev_allocs = hug_cuda_alloc_count();
	uint64_t chunks = r.dstep.n_chunk_allocs;
	for (int s = 2; s <= 5; s++) {
		double l = gpu_step(&r);
		CHECK(isfinite(l));
		if (hug_alloc_count() != host_allocs || hug_cuda_alloc_count() != dev_allocs)
			test_fail_at(__FILE__, __LINE__, "step %d allocated: %llu host, %llu "
				     "device", s,
				     (unsigned long long)(hug_alloc_count() - host_allocs),
				     (unsigned long long)(hug_cuda_alloc_count() - dev_allocs));
		host_allocs = hug_alloc_count();
		dev_allocs = hug_cuda_alloc_count();
	}
	CHECK(r.dstep.n_chunk_allocs == chunks);
	run_free(&r);
}

/* Every parameter's bytes, concatenated, into a new hug_malloc'd buffer. */
static unsigned char *param_bytes(const struct bloom_model *m, size_t *n)
{
	size_t total = 0;
	for (int i = 0; i < m->table.n; i++)
		total += tensor_nbytes(m->table.items[i].t);
	unsigned char *buf = hug_malloc(total), *p = buf;
	for (int i = 0; i < m->table.n; i++) {
		const struct tensor *t = m->table.items[i].t;
		hug_cuda_memcpy_d2h(p, t->data, tensor_nbytes(t));
		p += tensor_nbytes(t);
	}
	*n = total;
	return buf;
}

TEST(cuda_bloom_two_runs_bit_identical)
{
	CUDA_TEST_BEGIN();
	double loss[2][6];
	unsigned char *w[2];
	size_t nb[2];
	for (int k = 0; k < 2; k++) {
		struct run r;
		run_init(&r, 0.1, OPT_ADAMW);
		for (int s = 0; s < 6; s++)
			loss[k][s] = gpu_step(&r);
		w[k] = param_bytes(&r.dm, &nb[k]);
		run_free(&r);
	}
	for (int s = 0; s < 6; s++)
		if (memcmp(&loss[0][s], &loss[1][s], sizeof(double)))
			test_fail_at(__FILE__, __LINE__, "step %d: loss %.17g vs %.17g", s + 1,
				     loss[0][s], loss[1][s]);
	CHECK(nb[0] == nb[1]);
	CHECK(memcmp(w[0], w[1], nb[0]) == 0);
	CHECK(loss[0][5] < loss[0][0]);
	hug_free(w[0]);
	hug_free(w[1]);
}

/* The GPU and CPU runs of the same 8 SGD steps (dropout on): losses within
 * 1e-4 relative at every step, the final weights within 1e-4 (of the
 * largest weight), and the first gradient norm within 1e-5. */
TEST(cuda_bloom_training_follows_cpu)
{
	CUDA_TEST_BEGIN();
	struct run r;
	run_init(&r, 0.1, OPT_SGD);
	for (int s = 0; s < 8; s++) {
		double norm_cpu = 0, norm_gpu = 0;
		if (s == 0) { /* the GPU's norm of the first step's gradients */
			struct ag_ctx *ctx = &r.dctx;
			struct tensor *loss = bloom_lm_loss(
				ctx, bloom_forward(ctx, &r.dm, r.ids, r.mask), r.labels);
			REQUIRE(loss && ag_backward(ctx, loss) == 0);
			struct tensor **g = hug_malloc((size_t)r.dm.table.n * sizeof(*g));
			for (int i = 0; i < r.dm.table.n; i++)
				g[i] = r.dm.table.items[i].t->grad;
			norm_gpu = sqrt(hug_cuda_sum_squares(r.dm.table.n, g));
			hug_free(g);
			for (int i = 0; i < r.dm.table.n; i++) {
				const struct tensor *gr = r.dm.table.items[i].t->grad;
				hug_cuda_zero(gr->data, tensor_nbytes(gr));
			}
			ag_ctx_reset(ctx);
			/* the same step again from zeroed gradients: RNG offsets of
			 * the two contexts must stay in step */
			r.dctx.rng_offset = 0;
		}
		double lg = gpu_step(&r), lc = cpu_step(&r, s == 0 ? &norm_cpu : NULL);
		if (!(fabs(lg - lc) <= 1e-4 * fabs(lc)))
			test_fail_at(__FILE__, __LINE__, "step %d: gpu loss %.9g, cpu %.9g",
				     s + 1, lg, lc);
		if (s == 0 && !(fabs(norm_gpu - norm_cpu) <= 1e-5 * norm_cpu))
			test_fail_at(__FILE__, __LINE__, "gradient norm: gpu %.9g, cpu %.9g",
				     norm_gpu, norm_cpu);
	}
	double worst = 0;
	for (int i = 0; i < r.dm.table.n; i++) {
		const struct tensor *d = r.dm.table.items[i].t, *h = r.hm.table.items[i].t;
		int64_t n = tensor_numel(h), at;
		double *g = cuda_test_read(d), *w = host_doubles(h);
		double e = cuda_test_rel_err(g, w, n, &at);
		if (!(e <= 1e-4))
			test_fail_at(__FILE__, __LINE__, "%s after 8 steps: error %.3g (element "
				     "%lld: gpu %.9g, cpu %.9g)", r.hm.table.items[i].name, e,
				     (long long)at, g[at], w[at]);
		worst = e > worst ? e : worst;
		hug_free(g);
		hug_free(w);
	}
	printf("\n    weights after 8 steps: worst error %.2e\n    ", worst);
	run_free(&r);
}

/* ---- bf16 mixed precision ---- */

/* Tolerances of the bf16 model against f32 on the CPU (max|diff| /
 * max|ref|): logits 3e-2 and loss 2e-2 (a few bf16 roundings, 2^-9 each,
 * through two layers); the f32 master gradients 1e-1 (every op's gradient
 * is stored in bf16 before it reaches the cast back to f32). */
TEST(cuda_bloom_bf16_mixed_precision)
{
	CUDA_TEST_BEGIN();
	struct run r;
	run_init(&r, 0.0, OPT_SGD);
	struct bloom_model bm;
	struct ag_ctx *ctx = &r.dctx;
	ctx->training = false;
	r.hctx.training = false;
	bloom_model_cast(ctx, &r.dm, DT_BF16, &bm);
	struct tensor *logits = bloom_forward(ctx, &bm, r.ids, r.mask);
	struct tensor *loss = bloom_lm_loss(ctx, logits, r.labels);
	REQUIRE(loss && loss->dtype == DT_F32); /* the loss of bf16 logits is f32 */
	REQUIRE(ag_backward(ctx, loss) == 0);
	struct tensor *hlogits = bloom_forward(&r.hctx, &r.hm, r.hids, r.hmask);
	struct tensor *hloss = bloom_lm_loss(&r.hctx, hlogits, r.hlabels);
	REQUIRE(hloss && ag_backward(&r.hctx, hloss) == 0);
	int64_t at;
	double *g = cuda_test_read(logits), *w = host_doubles(hlogits);
	double el = cuda_test_rel_err(g, w, tensor_numel(hlogits), &at);
	hug_free(g);
	hug_free(w);
	g = cuda_test_read(loss);
	w = host_doubles(hloss);
	double eloss = fabs(g[0] - w[0]) / fabs(w[0]);
	hug_free(g);
	hug_free(w);
	double eg = 0;
	for (int i = 0; i < r.dm.table.n; i++) {
		const struct tensor *d = r.dm.table.items[i].t->grad;
		const struct tensor *h = r.hm.table.items[i].t->grad;
		REQUIRE(d->dtype == DT_F32);
		g = cuda_test_read(d);
		w = host_doubles(h);
		double e = cuda_test_rel_err(g, w, tensor_numel(h), &at);
		if (!(e <= 1e-1))
			test_fail_at(__FILE__, __LINE__, "bf16: grad of %s: error %.3g",
				     r.hm.table.items[i].name, e);
		eg = e > eg ? e : eg;
		hug_free(g);
		hug_free(w);
	}
	CHECK(el <= 3e-2);
	CHECK(eloss <= 2e-2);
	printf("\n    bf16 vs f32: logits %.2e, loss %.2e, master grads %.2e\n    ", el,
	       eloss, eg);
	run_free(&r);
}

#else
TEST(cuda_bloom)
{
	CUDA_TEST_BEGIN(); /* skips, or fails under HUG_REQUIRE_GPU */
}
#endif
