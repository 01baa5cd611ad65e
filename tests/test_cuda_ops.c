/* test_cuda_ops.c: every op of the engine on the CUDA backend against the
 * CPU backend, forward and backward, on odd shapes.
 *
 * Each case builds its inputs on the host from a fixed stream, runs the op
 * on the CPU (f32) and on the GPU (in f32, and in bf16), seeds the same
 * output gradient on both and runs backward. The error of a tensor is
 * max|gpu - cpu| / max|cpu| (the absolute difference when the reference is
 * all zero); a tolerance of 0 demands identical values.
 *
 * In the bf16 runs every float input and the output gradient hold
 * bf16-representable values, and the CPU reference computes in f32 on those
 * same values, so the tolerance measures only the GPU's bf16 storage of
 * results (2^-9 relative per rounding) and of intermediates (attention
 * probabilities, accumulated gradients). Per-op bf16 tolerances:
 *   exact (0): casts whose results are representable, embedding forward
 *   1e-2: element-wise ops, reductions, matmul/linear, embedding backward,
 *         softmax, GeLU, dropout, SiLU, SwiGLU, RoPE, one rounding of each
 *         result (two in SwiGLU's forward: silu(gate) is rounded first)
 *   2e-2: layer norm, RMSNorm (its normalised value is rounded before the
 *         weight multiplies it), cross-entropy (a bf16 loss; gradients
 *         from a bf16 x)
 *   3e-2: attention (scores, probabilities, dP and dS are stored in bf16
 *         between its GEMMs, as in transformers' bf16 BLOOM)
 * f32 runs are held to 1e-5 (the contract), and to 0 where the GPU
 * does the CPU's arithmetic in the CPU's order: dropout (the masks must be
 * equal bit for bit), embedding (forward and the ordered backward), casts.
 *
 * The cases are tests/op_cases.c's (one table for every op); one test per
 * op, cuda_ops_<op>, is generated from the op list autograd/ops.def.
 *
 * Bad ids and targets must give the CPU's error messages word for word
 * (cuda_ops_range_check), from the backend's device-side range check.
 *
 * Without a GPU every test reports itself skipped. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../autograd/backend.h"
#include "../base/alloc.h"
#include "../base/panic.h"
#include "../nn/bloom.h"
#include "../optim/finite_check.h"
#include "harness.h"
#include "op_cases.h"
#include "test_cuda_util.h"

#ifdef HUG_CUDA
#include "../autograd/cuda/cuda_api.h"
#include "../autograd/cuda/cuda_kernels.h"

#define MAX_IN OP_CASE_MAX_IN

/* One backend's run of a case: its arenas, context, inputs and results as
 * doubles. */
struct side {
	struct arena model, step;
	struct ag_ctx ctx;
	struct tensor *in[MAX_IN];
	int64_t out_n;
	double *out;
	double *grad[MAX_IN];
	int64_t grad_n[MAX_IN];
	enum dtype out_dt;
};

static void side_free(struct side *s)
{
	hug_free(s->out);
	for (int i = 0; i < MAX_IN; i++)
		hug_free(s->grad[i]);
	arena_free(&s->step);
	arena_free(&s->model);
}

static double *host_read(const struct tensor *t)
{
	int64_t n = tensor_numel(t);
	double *v = hug_malloc((size_t)(n ? n : 1) * sizeof(double));
	tensor_read_f64(t, v);
	return v;
}

/* Runs case c on device dev (float inputs of dtype dt there); false after
 * recording a failure. */
static bool side_run(struct side *s, const struct op_case *c, enum device dev,
		     enum dtype dt, bool bf16_exact)
{
	const struct arena_allocator *al = dev == DEV_CUDA ? hug_cuda_allocator() : NULL;
	memset(s, 0, sizeof(*s));
	arena_init(&s->model, "model", 0, al);
	arena_init(&s->step, "step", 0, al);
	ag_ctx_init(&s->ctx, &s->step);
	s->ctx.training = c->training;
	s->ctx.seed = 0x5eed;
	s->ctx.rng_offset = 12345;
	struct arena host;
	arena_init(&host, "host", 0, NULL);
	bool any_grad = false;
	for (int i = 0; i < MAX_IN; i++) {
		struct tensor *h = op_case_input(&host, &c->in[i], i, DT_F32, bf16_exact);
		if (!h)
			continue;
		struct tensor *t = h;
		if (dev == DEV_CUDA) {
			t = cuda_test_upload(&s->model, h, dt);
		} else {
			t = tensor_new(&s->model, h->dtype, h->ndim, h->shape);
			ag_backend_get(DEV_CPU)->copy(t, h);
		}
		if (c->in[i].grad) {
			tensor_set_requires_grad(t, &s->model);
			any_grad = true;
		}
		s->in[i] = t;
	}
	struct tensor *out = c->run(&s->ctx, s->in, c);
	if (!out) {
		test_fail_at(__FILE__, __LINE__, "%s (%s on %s): %s", c->name, dtype_name(dt),
			     device_name(dev), s->ctx.err.msg);
		arena_free(&host);
		return false;
	}
	s->out_dt = out->dtype;
	s->out_n = tensor_numel(out);
	s->out = dev == DEV_CUDA ? cuda_test_read(out) : host_read(out);
	if (any_grad && out->requires_grad) {
		struct tensor *g = tensor_new(&host, DT_F32, out->ndim, out->shape);
		cuda_test_fill(g, 999, 1.0, bf16_exact);
		struct tensor *gd = g;
		if (dev == DEV_CUDA)
			gd = cuda_test_upload(&s->step, g, out->dtype);
		if (ag_backward_from(&s->ctx, out, gd)) {
			test_fail_at(__FILE__, __LINE__, "%s (%s on %s): %s", c->name,
				     dtype_name(dt), device_name(dev), s->ctx.err.msg);
			arena_free(&host);
			return false;
		}
		for (int i = 0; i < MAX_IN; i++) {
			if (!s->in[i] || !s->in[i]->grad)
				continue;
			s->grad_n[i] = tensor_numel(s->in[i]->grad);
			s->grad[i] = dev == DEV_CUDA ? cuda_test_read(s->in[i]->grad)
						     : host_read(s->in[i]->grad);
		}
	}
	arena_free(&host);
	return true;
}

/* Compares one tensor; returns its error. */
static double check_tensor(const struct op_case *c, enum dtype dt, const char *what,
			   const double *got, const double *want, int64_t n, double tol)
{
	int64_t worst;
	double err = cuda_test_rel_err(got, want, n, &worst);
	bool ok = tol == 0 ? err == 0 : err <= tol;
	if (!ok)
		test_fail_at(__FILE__, __LINE__,
			     "%s (%s): %s: error %.3g > %.3g (element %lld of %lld: gpu "
			     "%.9g, cpu %.9g)", c->name, dtype_name(dt), what, err, tol,
			     (long long)worst, (long long)n, n ? got[worst] : 0.0,
			     n ? want[worst] : 0.0);
	return err;
}

/* Runs case c on the CPU in f32 and on the GPU in dt; compares. */
static void parity(const struct op_case *c, enum dtype dt)
{
	struct side cpu, gpu;
	bool bf16 = dt == DT_BF16;
	double tol = bf16 ? c->tol_bf16 : c->tol_f32, worst = 0;
	if (!side_run(&cpu, c, DEV_CPU, DT_F32, bf16)) {
		side_free(&cpu);
		return;
	}
	if (!side_run(&gpu, c, DEV_CUDA, dt, bf16)) {
		side_free(&cpu);
		side_free(&gpu);
		return;
	}
	if (cpu.out_n != gpu.out_n) {
		test_fail_at(__FILE__, __LINE__, "%s: %lld outputs on the gpu, %lld on the cpu",
			     c->name, (long long)gpu.out_n, (long long)cpu.out_n);
	} else {
		worst = check_tensor(c, dt, "output", gpu.out, cpu.out, cpu.out_n, tol);
		for (int i = 0; i < MAX_IN; i++) {
			char what[32];
			if (!cpu.grad[i] && !gpu.grad[i])
				continue;
			snprintf(what, sizeof(what), "grad of input %d", i);
			if (!cpu.grad[i] || !gpu.grad[i] || cpu.grad_n[i] != gpu.grad_n[i]) {
				test_fail_at(__FILE__, __LINE__, "%s (%s): %s missing on one side",
					     c->name, dtype_name(dt), what);
				continue;
			}
			double e = check_tensor(c, dt, what, gpu.grad[i], cpu.grad[i],
						cpu.grad_n[i], tol);
			worst = e > worst ? e : worst;
		}
	}
	printf("\n    %-26s %-4s worst error %.2e (tolerance %.0e)", c->name,
	       dtype_name(dt), worst, tol);
	side_free(&cpu);
	side_free(&gpu);
}

/* Runs every case of op (or family) `fam` (op_case_is_of). */
static void parity_family(const char *fam)
{
	int n = 0;
	for (int i = 0; i < op_n_cases; i++) {
		if (!op_case_is_of(&op_cases[i], fam))
			continue;
		parity(&op_cases[i], DT_F32);
		parity(&op_cases[i], DT_BF16);
		n++;
	}
	printf("\n    ");
	CHECK(n > 0);
}

#define FAMILY_TEST(fam)                                                       \
	TEST(cuda_ops_##fam)                                                   \
	{                                                                      \
		CUDA_TEST_BEGIN();                                             \
		parity_family(#fam);                                           \
	}

/* one test per op of the op list, cuda_ops_<op>, and the combinations */
#define AG_OP(U, l, kind) FAMILY_TEST(l)
#include "../autograd/ops.def"
FAMILY_TEST(transpose)
FAMILY_TEST(reshape)
FAMILY_TEST(composite)

/* The CUDA table has a kernel for every op (a forward unless the op is a
 * view) and tests/op_cases.c a case for every op (cuda_ops_<op> compares
 * them). Needs no GPU. */
TEST(cuda_backend_table_complete)
{
	for (int op = 0; op < AG_OP_COUNT; op++) {
		const char *name = ag_op_info[op].name;
		if (!ag_cuda_backend.op[op].backward)
			test_fail_at(__FILE__, __LINE__, "cuda: no backward kernel for %s", name);
		if (!ag_op_info[op].is_view && !ag_cuda_backend.op[op].forward)
			test_fail_at(__FILE__, __LINE__, "cuda: no forward kernel for %s", name);
		bool found = false;
		for (int i = 0; i < op_n_cases && !found; i++)
			found = op_case_is_of(&op_cases[i], name);
		if (!found)
			test_fail_at(__FILE__, __LINE__, "no parity case for op %s", name);
	}
	CHECK(ag_cuda_backend.device == DEV_CUDA);
	CHECK(ag_cuda_backend.accumulate && ag_cuda_backend.fill && ag_cuda_backend.copy);
	CHECK(ag_cuda_backend.find_out_of_range != NULL);
	CHECK(ag_cuda_backend.optim_update && ag_cuda_backend.sum_squares);
}

/* ---- range checks of ids and targets on the device ---- */

/* Two ranks in name only: the all-reduce does nothing, enough for the op
 * layer to take a vocabulary slice on one process. */
static void noop_allreduce(void *state, void *buf, int64_t n, enum dtype dt, bool max,
			   enum device dev)
{
	(void)state, (void)buf, (void)n, (void)dt, (void)max, (void)dev;
}

static const struct ag_collective fake_pair = { NULL, 0, 2, noop_allreduce };

/* One range-check case: an op of a float tensor (the weight or the logits)
 * and an i32 tensor (ids or targets). */
struct range_case {
	const char *name;
	struct tensor *(*run)(struct ag_ctx *ctx, struct tensor *f, struct tensor *i);
	int64_t f_shape[2], i_n;
	const int32_t *ids;
	const char *want; /* in the message; NULL: the op must succeed */
};

static struct tensor *rc_embedding(struct ag_ctx *ctx, struct tensor *w, struct tensor *ids)
{
	return ag_embedding(ctx, ids, w);
}

/* rows [4, 4 + V) of a vocabulary of 12 */
static struct tensor *rc_embedding_shard(struct ag_ctx *ctx, struct tensor *w,
					 struct tensor *ids)
{
	return ag_embedding_shard(ctx, ids, w, 4, 12);
}

static struct tensor *rc_cross_entropy(struct ag_ctx *ctx, struct tensor *logits,
				       struct tensor *t)
{
	return ag_cross_entropy(ctx, logits, t, -100);
}

/* the slice [5, 5 + V) of a vocabulary of 13 on one of two ranks */
static struct tensor *rc_cross_entropy_shard(struct ag_ctx *ctx, struct tensor *logits,
					     struct tensor *t)
{
	return ag_cross_entropy_shard(ctx, logits, t, -100, 5, 13, &fake_pair);
}

/* Runs rc on device dev; the message in msg ("" on success). */
static void range_run(const struct range_case *rc, enum device dev, char *msg, size_t len)
{
	const struct arena_allocator *al = dev == DEV_CUDA ? hug_cuda_allocator() : NULL;
	struct arena host, model, step;
	struct ag_ctx ctx;
	arena_init(&host, "host", 0, NULL);
	arena_init(&model, "model", 0, al);
	arena_init(&step, "step", 0, al);
	ag_ctx_init(&ctx, &step);
	struct tensor *f = tensor_new(&host, DT_F32, 2, rc->f_shape);
	cuda_test_fill(f, 7, 1.0, false);
	struct tensor *i = tensor_new(&host, DT_I32, 1, &rc->i_n);
	memcpy(i->data, rc->ids, tensor_nbytes(i));
	if (dev == DEV_CUDA) {
		f = cuda_test_upload(&model, f, DT_F32);
		i = cuda_test_upload(&model, i, DT_I32);
	}
	struct tensor *out = rc->run(&ctx, f, i);
	snprintf(msg, len, "%s", out ? "" : ctx.err.msg);
	if (out && !ag_failed(&ctx) && out->ndim == 0) {
		double *v = dev == DEV_CUDA ? cuda_test_read(out) : host_read(out);
		if (!isfinite(v[0]))
			snprintf(msg, len, "%s: a loss of %g", device_name(dev), v[0]);
		hug_free(v);
	}
	arena_free(&step);
	arena_free(&model);
	arena_free(&host);
}

/* A bad id or target gives the GPU the CPU's error, word for word (the
 * value read back from device memory, the first bad position); ids of other
 * shards' rows, targets outside this rank's slice but inside the
 * vocabulary and the ignore index are accepted. */
TEST(cuda_ops_range_check)
{
	CUDA_TEST_BEGIN();
	static const int32_t ids_ok[] = { 0, 11, 3, 7, 11, 0 };
	static const int32_t ids_big[] = { 0, 11, 12, 7, 40, 0 };
	static const int32_t ids_neg[] = { 0, 11, 3, -7, 11, -1 };
	static const int32_t tgt_ok[] = { 12, -100, 0, 7, -100, 9 };
	static const int32_t tgt_big[] = { 12, -100, 0, 13, -100, 99 };
	static const int32_t tgt_neg[] = { 12, -100, 0, 7, -1, 9 };
	const struct range_case cases_rc[] = {
		{ "embedding", rc_embedding, { 12, 3 }, 6, ids_ok, NULL },
		{ "embedding", rc_embedding, { 12, 3 }, 6, ids_big, "id 12 at position 2 " },
		{ "embedding", rc_embedding, { 12, 3 }, 6, ids_neg, "id -7 at position 3 " },
		{ "embedding_shard", rc_embedding_shard, { 8, 3 }, 6, ids_ok, NULL },
		{ "embedding_shard", rc_embedding_shard, { 8, 3 }, 6, ids_big, "id 12 at position 2 " },
		{ "cross_entropy", rc_cross_entropy, { 6, 13 }, 6, tgt_ok, NULL },
		{ "cross_entropy", rc_cross_entropy, { 6, 13 }, 6, tgt_big, "target 13 at position 3 " },
		{ "cross_entropy", rc_cross_entropy, { 6, 13 }, 6, tgt_neg, "target -1 at position 4 " },
		{ "cross_entropy_shard", rc_cross_entropy_shard, { 6, 5 }, 6, tgt_ok, NULL },
		{ "cross_entropy_shard", rc_cross_entropy_shard, { 6, 5 }, 6, tgt_big,
		  "target 13 at position 3 " },
		{ "cross_entropy_shard", rc_cross_entropy_shard, { 6, 5 }, 6, tgt_neg,
		  "target -1 at position 4 " },
	};
	for (size_t c = 0; c < sizeof(cases_rc) / sizeof(cases_rc[0]); c++) {
		const struct range_case *rc = &cases_rc[c];
		char cpu[HUG_ERROR_MAX], gpu[HUG_ERROR_MAX];
		range_run(rc, DEV_CPU, cpu, sizeof(cpu));
		range_run(rc, DEV_CUDA, gpu, sizeof(gpu));
		if (strcmp(cpu, gpu))
			test_fail_at(__FILE__, __LINE__, "%s #%zu: cpu \"%s\", gpu \"%s\"",
				     rc->name, c, cpu, gpu);
		if (rc->want ? !strstr(gpu, rc->want) : gpu[0] != 0)
			test_fail_at(__FILE__, __LINE__, "%s #%zu: gpu \"%s\", expected %s%s",
				     rc->name, c, gpu, rc->want ? "" : "success",
				     rc->want ? rc->want : "");
	}
}

/* The CUDA backend's range check itself on a tensor of several blocks with
 * many bad values: the lowest bad position whatever order the blocks run
 * in, its value, the skipped value, and an empty tensor. */
TEST(cuda_find_out_of_range_hook)
{
	CUDA_TEST_BEGIN();
	const int64_t n = (1 << 20) + 7;
	struct arena host, dev;
	arena_init(&host, "host", 0, NULL);
	arena_init(&dev, "dev", 0, hug_cuda_allocator());
	struct tensor *h = tensor_new(&host, DT_I32, 1, &n);
	int32_t *v = h->data;
	for (int64_t i = 0; i < n; i++)
		v[i] = (int32_t)(i % 1000);
	v[5] = -100;
	for (int64_t i = 777777; i < n; i += 3)
		v[i] = 5000 + (int32_t)(i % 7);
	v[n - 1] = -3;
	struct tensor *d = cuda_test_upload(&dev, h, DT_I32);
	int32_t bad = 77;
	CHECK(cuda_find_out_of_range(d, -100, 5007, INT64_MIN, &bad) == -1 && bad == 77);
	CHECK(cuda_find_out_of_range(d, 0, 5007, -100, &bad) == n - 1 && bad == -3);
	CHECK(cuda_find_out_of_range(d, -3, 1000, -100, &bad) == 777777 &&
	      bad == 5000 + 777777 % 7);
	CHECK(cuda_find_out_of_range(d, 0, 1000, INT64_MIN, &bad) == 5 && bad == -100);
	CHECK(cuda_find_out_of_range(d, 1, 1000, -100, &bad) == 0 && bad == 0);
	/* the same answers as the CPU backend */
	int32_t cbad = 0;
	CHECK(ag_cpu_backend.find_out_of_range(h, -3, 1000, -100, &cbad) == 777777 &&
	      cbad == 5000 + 777777 % 7);
	struct tensor *e = tensor_new(&dev, DT_I32, 1, (int64_t[]){ 0 });
	bad = 77;
	CHECK(cuda_find_out_of_range(e, 0, 0, INT64_MIN, &bad) == -1 && bad == 77);
	arena_free(&dev);
	arena_free(&host);
}

/* A row of NaN scores gives a NaN output row and NaN gradients, as on the
 * CPU (tests/test_attention_nan.c), while a row masked by the padding mask
 * keeps zeros; the optimizer's device finite check sees a NaN. */
TEST(cuda_attention_nan_row)
{
	CUDA_TEST_BEGIN();
	enum { T = 4, D = 3 };
	struct arena host, dev;
	arena_init(&host, "host", 0, NULL);
	arena_init(&dev, "dev", 0, hug_cuda_allocator());
	struct ag_ctx ctx;
	ag_ctx_init(&ctx, &dev);
	struct tensor *qkv[3];
	for (int i = 0; i < 3; i++) { /* (1, 1, T, D) */
		struct tensor *h = tensor_new(&host, DT_F32, TENSOR_SHAPE(1, 1, T, D));
		float *x = h->data;
		for (int e = 0; e < T * D; e++)
			x[e] = i == 0 && e / D == 2 ? NAN : 0.1f * (float)((e * 7 + i * 3) % 11) - 0.5f;
		qkv[i] = cuda_test_upload(&dev, h, DT_F32);
		tensor_set_requires_grad(qkv[i], &dev);
	}
	CHECK(!tensor_all_finite(qkv[0]) && tensor_all_finite(qkv[1]));
	struct tensor *hm = tensor_new(&host, DT_I32, TENSOR_SHAPE(1, T));
	const int32_t mk[T] = { 0, 1, 1, 1 }; /* row 0: its only key is padding */
	memcpy(hm->data, mk, sizeof(mk));
	struct tensor *mask = cuda_test_upload(&dev, hm, DT_I32);
	struct tensor *o = ag_attention(&ctx, qkv[0], qkv[1], qkv[2],
					&(struct ag_attn_desc){ .causal = true, .key_mask = mask });
	REQUIRE(o);
	double *y = cuda_test_read(o);
	for (int d = 0; d < D; d++) {
		CHECK(y[0 * D + d] == 0);
		CHECK(isfinite(y[1 * D + d]) && isfinite(y[3 * D + d]));
		CHECK(isnan(y[2 * D + d]));
	}
	hug_free(y);
	REQUIRE(ag_backward(&ctx, ag_sum(&ctx, o, AG_DIM_ALL)) == 0);
	double *dq = cuda_test_read(qkv[0]->grad);
	CHECK(isnan(dq[2 * D]) && isfinite(dq[1 * D]) && isfinite(dq[3 * D]));
	hug_free(dq);
	arena_free(&dev);
	arena_free(&host);
}

#else
TEST(cuda_ops)
{
	CUDA_TEST_BEGIN(); /* skips, or fails under HUG_REQUIRE_GPU */
}
#endif
