/* test_arena.c: the arenas (alignment, reuse after reset, chunks coalescing
 * into one block) and the promise built on them: a training loop allocates
 * nothing on the heap after its first step. */
#include <stdint.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../base/alloc.h"
#include "../nn/bloom.h"
#include "gradcheck.h"
#include "ag_env.h"
#include "harness.h"

TEST(arena_alignment)
{
	struct arena a;
	arena_init(&a, "t", 4096, NULL);
	const size_t sizes[] = { 1, 3, 64, 65, 7, 1000, 0, 129, 5000, 13 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *p = arena_alloc(&a, sizes[i]);
		CHECK(((uintptr_t)p % ARENA_ALIGN) == 0);
		memset(p, 0xab, sizes[i]); /* the whole block is usable (ASan) */
	}
	CHECK(ARENA_ALIGN == 64);
	arena_free(&a);
}

TEST(arena_calloc_zeroes)
{
	struct arena a;
	arena_init(&a, "t", 1024, NULL);
	unsigned char *p = arena_alloc(&a, 500);
	memset(p, 0xff, 500);
	arena_reset(&a);
	unsigned char *q = arena_calloc(&a, 500);
	CHECK(q == p); /* the same memory again */
	int nonzero = 0;
	for (int i = 0; i < 500; i++)
		nonzero += q[i] != 0;
	CHECK(nonzero == 0);
	arena_free(&a);
}

TEST(arena_reset_reuses_memory)
{
	struct arena a;
	arena_init(&a, "t", 1 << 16, NULL);
	void *p[5];
	for (int i = 0; i < 5; i++)
		p[i] = arena_alloc(&a, 100 + 300 * (size_t)i);
	CHECK(a.used > 0);
	uint64_t chunks = a.n_chunk_allocs, allocs = hug_alloc_count();
	CHECK(chunks == 1);
	arena_reset(&a);
	CHECK(a.used == 0);
	for (int i = 0; i < 5; i++)
		CHECK(arena_alloc(&a, 100 + 300 * (size_t)i) == p[i]);
	CHECK(a.n_chunk_allocs == chunks);
	CHECK(hug_alloc_count() == allocs);
	arena_free(&a);
	CHECK(arena_capacity(&a) == 0);
}

TEST(arena_chunks_coalesce_after_reset)
{
	struct arena a;
	arena_init(&a, "t", 1024, NULL);
	/* a run of requests far larger than the first chunk, one larger than
	 * any chunk would be by doubling */
	const size_t sizes[] = { 700, 900, 300, 5000, 64, 2000, 100000, 1, 333 };
	const int n = (int)(sizeof(sizes) / sizeof(sizes[0]));
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < n; i++) {
			char *p = arena_alloc(&a, sizes[i]);
			CHECK(((uintptr_t)p % ARENA_ALIGN) == 0);
			memset(p, round, sizes[i]);
		}
		if (round == 0)
			CHECK(a.n_chunk_allocs > 1);
		size_t peak = a.high_water;
		uint64_t chunks_before = a.n_chunk_allocs;
		arena_reset(&a);
		/* one chunk large enough for the peak */
		CHECK(arena_capacity(&a) >= peak);
		CHECK(a.chunks != NULL);
		if (round > 0)
			CHECK(a.n_chunk_allocs == chunks_before); /* nothing new */
		uint64_t allocs = hug_alloc_count();
		uint64_t chunks = a.n_chunk_allocs;
		size_t cap = arena_capacity(&a);
		/* the same sequence again fits without growing */
		for (int i = 0; i < n; i++)
			arena_alloc(&a, sizes[i]);
		CHECK(a.n_chunk_allocs == chunks);
		CHECK(arena_capacity(&a) == cap);
		CHECK(hug_alloc_count() == allocs);
		arena_reset(&a);
	}
	arena_free(&a);
}

TEST(arena_tensors)
{
	struct arena a;
	arena_init(&a, "t", 0, NULL);
	struct tensor *t = tensor_zeros(&a, DT_F32, TENSOR_SHAPE(3, 5, 7));
	CHECK(((uintptr_t)t->data % ARENA_ALIGN) == 0);
	CHECK(tensor_numel(t) == 105 && tensor_nbytes(t) == 420);
	CHECK(tensor_is_contiguous(t));
	CHECK(t->stride[0] == 35 && t->stride[1] == 7 && t->stride[2] == 1);
	CHECK(t->grad == NULL && !t->requires_grad && t->node == NULL);
	const float *f = t->data;
	int nonzero = 0;
	for (int i = 0; i < 105; i++)
		nonzero += f[i] != 0;
	CHECK(nonzero == 0);
	char d[64];
	CHECK(strcmp(tensor_describe(t, d, sizeof(d)), "[3, 5, 7] f32") == 0);
	struct tensor *s = tensor_new(&a, DT_F64, 0, NULL);
	CHECK(tensor_numel(s) == 1);
	CHECK(strcmp(tensor_describe(s, d, sizeof(d)), "[] f64") == 0);
	arena_free(&a);
}

/* ---- a training loop allocates nothing after step 1 ---- */

struct mlp {
	struct tensor *w1, *b1, *w2, *b2;  /* (24, 16), (24), (5, 24), (5) */
	struct tensor *x;                  /* (4, 6, 16) input, constant */
	struct tensor *targets;            /* (4, 6) i32 */
};

static struct tensor *param_f32(struct arena *model, uint64_t seed, double scale,
				int ndim, const int64_t *shape)
{
	struct tensor *t = tensor_new(model, DT_F32, ndim, shape);
	gradcheck_fill_uniform(t, seed, -scale, scale);
	tensor_set_requires_grad(t, model);
	return t;
}

static void sgd_step(struct tensor *p, float lr)
{
	float *w = p->data, *g = p->grad->data;
	int64_t n = tensor_numel(p);
	for (int64_t i = 0; i < n; i++) {
		w[i] -= lr * g[i];
		g[i] = 0;
	}
}

/* One forward/backward/update; returns the loss, or NAN on error. */
static double mlp_step(struct ag_ctx *ctx, struct mlp *m, float lr)
{
	struct tensor *h = ag_linear(ctx, m->x, m->w1, m->b1);
	h = ag_gelu(ctx, h);
	struct tensor *logits = ag_linear(ctx, h, m->w2, m->b2);
	struct tensor *loss = ag_cross_entropy(ctx, logits, m->targets, -100);
	if (!loss || ag_backward(ctx, loss) != 0)
		return NAN;
	double l;
	tensor_read_f64(loss, &l);
	sgd_step(m->w1, lr);
	sgd_step(m->b1, lr);
	sgd_step(m->w2, lr);
	sgd_step(m->b2, lr);
	ag_ctx_reset(ctx);
	return l;
}

TEST(arena_training_loop_allocates_nothing_after_step_1)
{
	struct ag_env e;
	/* a small first chunk so step 1 grows the arena over several chunks */
	ag_env_init(&e, 4096);

	struct mlp m = {
		.w1 = param_f32(&e.model, 1, 0.25, TENSOR_SHAPE(24, 16)),
		.b1 = param_f32(&e.model, 2, 0.1, TENSOR_SHAPE(24)),
		.w2 = param_f32(&e.model, 3, 0.2, TENSOR_SHAPE(5, 24)),
		.b2 = param_f32(&e.model, 4, 0.1, TENSOR_SHAPE(5)),
		.x = tensor_new(&e.model, DT_F32, TENSOR_SHAPE(4, 6, 16)),
		.targets = tensor_new(&e.model, DT_I32, TENSOR_SHAPE(4, 6)),
	};
	gradcheck_fill_uniform(m.x, 5, -1, 1);
	int32_t *tg = m.targets->data;
	for (int i = 0; i < 24; i++)
		tg[i] = i % 7 == 3 ? -100 : (i * 3) % 5;

	double loss[12];
	loss[0] = mlp_step(&e.ctx, &m, 0.5f);
	REQUIRE(!ag_failed(&e.ctx));
	REQUIRE(!isnan(loss[0]));
	CHECK(e.step.n_chunk_allocs > 1); /* the test exercises growth */
	uint64_t allocs = hug_alloc_count();
	uint64_t step_chunks = e.step.n_chunk_allocs;
	size_t model_used = e.model.used;
	for (int s = 1; s < 12; s++) {
		loss[s] = mlp_step(&e.ctx, &m, 0.5f);
		if (hug_alloc_count() != allocs)
			test_fail_at(__FILE__, __LINE__,
				     "step %d made %llu heap allocations", s + 1,
				     (unsigned long long)(hug_alloc_count() - allocs));
		allocs = hug_alloc_count();
	}
	CHECK(!ag_failed(&e.ctx));
	CHECK(e.step.n_chunk_allocs == step_chunks);
	CHECK(e.model.used == model_used);
	for (int s = 0; s < 12; s++)
		CHECK(isfinite(loss[s]));
	if (!(loss[11] < loss[0] - 0.1))
		test_fail_at(__FILE__, __LINE__, "loss did not fall: %.5f -> %.5f",
			     loss[0], loss[11]);
	CHECK(loss[4] < loss[0]);
	ag_env_free(&e);
}

/* The same promise over every op family a BLOOM step uses: embedding,
 * layernorm, fused-QKV attention with ALiBi and a padding mask, dropout,
 * residual add, softmax, mean, transposed matmul, cross entropy. */
struct tiny_lm {
	struct tensor *wte, *ln_w, *ln_b, *qkv_w, *qkv_b, *proj_w;  /* params */
	struct tensor *ids, *targets, *mask, *slopes;
};

#define LM_V 11
#define LM_C 12
#define LM_H 3
#define LM_D 4
#define LM_B 2
#define LM_T 5

static struct tensor *tiny_lm_loss(struct ag_ctx *ctx, struct tiny_lm *m)
{
	const int perm[4] = { 0, 2, 1, 3 };
	struct tensor *x = ag_embedding(ctx, m->ids, m->wte);
	struct tensor *h = ag_layernorm(ctx, x, m->ln_w, m->ln_b, 1e-5);
	struct tensor *qkv = ag_linear(ctx, h, m->qkv_w, m->qkv_b);
	qkv = ag_view(ctx, qkv, TENSOR_SHAPE(LM_B, LM_T, LM_H, 3 * LM_D));
	struct tensor *q = ag_permute(ctx, ag_slice(ctx, qkv, 3, 0, LM_D), perm);
	struct tensor *k = ag_permute(ctx, ag_slice(ctx, qkv, 3, LM_D, LM_D), perm);
	struct tensor *v = ag_permute(ctx, ag_slice(ctx, qkv, 3, 2 * LM_D, LM_D), perm);
	struct tensor *a = ag_attention(ctx, q, k, v, &(struct ag_attn_desc){
		.pos_bias = AG_POS_BIAS_ALIBI, .slopes = m->slopes, .causal = true, .key_mask = m->mask });
	a = ag_reshape(ctx, ag_permute(ctx, a, perm), TENSOR_SHAPE(LM_B, LM_T, LM_C));
	a = ag_dropout(ctx, ag_linear(ctx, a, m->proj_w, NULL), 0.1);
	x = ag_add(ctx, x, a);
	struct tensor *logits = ag_matmul(ctx, x, m->wte, false, true); /* tied */
	struct tensor *probs = ag_softmax(ctx, logits);
	struct tensor *reg = ag_scale(ctx, ag_mean(ctx, ag_mul(ctx, probs, probs),
						   AG_DIM_ALL), 0.01);
	struct tensor *ce = ag_cross_entropy(ctx, logits, m->targets, -100);
	return ag_add(ctx, ce, reg);
}

TEST(arena_tiny_lm_allocates_nothing_after_step_1)
{
	struct ag_env e;
	ag_env_init(&e, 2048);
	e.ctx.seed = 7;

	struct tiny_lm m = {
		.wte = param_f32(&e.model, 11, 0.5, TENSOR_SHAPE(LM_V, LM_C)),
		.ln_w = param_f32(&e.model, 12, 0.1, TENSOR_SHAPE(LM_C)),
		.ln_b = param_f32(&e.model, 13, 0.1, TENSOR_SHAPE(LM_C)),
		.qkv_w = param_f32(&e.model, 14, 0.3, TENSOR_SHAPE(3 * LM_C, LM_C)),
		.qkv_b = param_f32(&e.model, 15, 0.1, TENSOR_SHAPE(3 * LM_C)),
		.proj_w = param_f32(&e.model, 16, 0.3, TENSOR_SHAPE(LM_C, LM_C)),
		.ids = tensor_new(&e.model, DT_I32, TENSOR_SHAPE(LM_B, LM_T)),
		.targets = tensor_new(&e.model, DT_I32, TENSOR_SHAPE(LM_B, LM_T)),
		.mask = tensor_new(&e.model, DT_I32, TENSOR_SHAPE(LM_B, LM_T)),
		.slopes = tensor_new(&e.model, DT_F32, TENSOR_SHAPE(LM_H)),
	};
	float *lw = m.ln_w->data;
	for (int c = 0; c < LM_C; c++)
		lw[c] += 1.0f;
	const int32_t ids[] = { 1, 4, 9, 4, 2, 0, 0, 3, 10, 7 };
	const int32_t tgt[] = { 4, 9, 4, 2, 5, -100, -100, 10, 7, 1 };
	const int32_t msk[] = { 1, 1, 1, 1, 1, 0, 0, 1, 1, 1 };
	memcpy(m.ids->data, ids, sizeof(ids));
	memcpy(m.targets->data, tgt, sizeof(tgt));
	memcpy(m.mask->data, msk, sizeof(msk));
	double sl[LM_H];
	bloom_alibi_slopes(LM_H, sl);
	tensor_write_f64(m.slopes, sl);
	struct tensor *params[] = { m.wte, m.ln_w, m.ln_b, m.qkv_w, m.qkv_b, m.proj_w };

	uint64_t allocs = 0;
	double first = 0, last = 0;
	for (int s = 0; s < 8; s++) {
		struct tensor *loss = tiny_lm_loss(&e.ctx, &m);
		if (!loss || ag_backward(&e.ctx, loss) != 0) {
			test_fail_at(__FILE__, __LINE__, "step %d: %s", s + 1, e.ctx.err.msg);
			break;
		}
		tensor_read_f64(loss, &last);
		if (s == 0)
			first = last;
		for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
			sgd_step(params[i], 0.2f);
		ag_ctx_reset(&e.ctx);
		if (s > 0 && hug_alloc_count() != allocs)
			test_fail_at(__FILE__, __LINE__,
				     "step %d made %llu heap allocations", s + 1,
				     (unsigned long long)(hug_alloc_count() - allocs));
		allocs = hug_alloc_count();
	}
	CHECK(isfinite(first) && isfinite(last));
	CHECK(last < first);
	ag_env_free(&e);
}
