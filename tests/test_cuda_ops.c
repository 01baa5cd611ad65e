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
 *         softmax, GeLU, dropout, one rounding of each result
 *   2e-2: layer norm, cross-entropy (a bf16 loss; gradients from a bf16 x)
 *   3e-2: attention (scores, probabilities, dP and dS are stored in bf16
 *         between its GEMMs, as in transformers' bf16 BLOOM)
 * f32 runs are held to 1e-5 (the contract), and to 0 where the GPU
 * does the CPU's arithmetic in the CPU's order: dropout (the masks must be
 * equal bit for bit), embedding (forward and the ordered backward), casts.
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
#include "test_cuda_util.h"

#ifdef HUG_CUDA
#include "../autograd/cuda/cuda_api.h"
#include "../autograd/cuda/cuda_kernels.h"

#define MAX_IN 5

enum in_kind {
	IN_NONE,    /* a NULL input (no bias, no mask...) */
	IN_FLOAT,   /* uniform in [-scale, scale) */
	IN_IDS,     /* i32 ids in [0, range) with repeats */
	IN_MASK,    /* i32 (B, T): full, left-padded, with a hole, empty */
	IN_TARGETS, /* i32 in [0, range), every 4th one -100; range 0: all -100 */
	IN_SLOPES,  /* the ALiBi slopes of shape[0] heads */
};

struct in_spec {
	enum in_kind kind;
	int ndim;
	int64_t shape[4];
	bool grad;
	double scale;
	int64_t range;
};

struct op_case;
typedef struct tensor *(*run_fn)(struct ag_ctx *ctx, struct tensor **in,
				 const struct op_case *c);

struct op_case {
	const char *name;
	run_fn run;
	struct in_spec in[MAX_IN];
	double tol_f32, tol_bf16;
	int ia, ib;      /* op parameters for run */
	double da;
	bool training;
};

/* Input specs: a float input that needs a gradient (F, FS with a scale),
 * ids or targets in [0, r), a mask, ALiBi slopes, or nothing. */
#define NDIM(...) ((int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)))
#define F(...) { IN_FLOAT, NDIM(__VA_ARGS__), { __VA_ARGS__ }, true, 1.0, 0 }
#define FS(s, ...) { IN_FLOAT, NDIM(__VA_ARGS__), { __VA_ARGS__ }, true, s, 0 }
#define IDS(r, ...) { IN_IDS, NDIM(__VA_ARGS__), { __VA_ARGS__ }, false, 0, r }
#define TGT(r, ...) { IN_TARGETS, NDIM(__VA_ARGS__), { __VA_ARGS__ }, false, 0, r }
#define MASK(b, t) { IN_MASK, 2, { b, t }, false, 0, 0 }
#define SLOPES(h) { IN_SLOPES, 1, { h }, false, 0, 0 }
#define NONE { IN_NONE, 0, { 0 }, false, 0, 0 }

/* ---- the ops under test ---- */

static struct tensor *run_matmul(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	return ag_matmul(ctx, in[0], in[1], c->ia, c->ib);
}

static struct tensor *run_linear(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_linear(ctx, in[0], in[1], in[2]);
}

static struct tensor *run_add(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_add(ctx, in[0], in[1]);
}

static struct tensor *run_mul(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_mul(ctx, in[0], in[1]);
}

static struct tensor *run_square(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_mul(ctx, in[0], in[0]); /* both gradients land in one buffer */
}

static struct tensor *run_scale(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	return ag_scale(ctx, in[0], c->da);
}

static struct tensor *run_sum(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	return ag_sum(ctx, in[0], c->ia);
}

static struct tensor *run_mean(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	return ag_mean(ctx, in[0], c->ia);
}

static struct tensor *run_view(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_view(ctx, in[0], TENSOR_SHAPE(-1, 7));
}

static struct tensor *run_permute(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_permute(ctx, in[0], (const int[]){ 2, 0, 1 });
}

static struct tensor *run_transpose(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	return ag_transpose(ctx, in[0], c->ia, c->ib);
}

static struct tensor *run_slice(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	return ag_slice(ctx, in[0], c->ia, c->ib, (int64_t)c->da);
}

static struct tensor *run_contiguous(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_contiguous(ctx, ag_permute(ctx, ag_slice(ctx, in[0], 2, 1, 5),
					     (const int[]){ 1, 2, 0 }));
}

static struct tensor *run_reshape(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_reshape(ctx, ag_transpose(ctx, in[0], 0, 2), TENSOR_SHAPE(7, 15));
}

/* x -> bf16 -> f32 (for a bf16 x: x -> f32) */
static struct tensor *run_cast_bf16(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	struct tensor *x = in[0];
	if (x->dtype == DT_BF16)
		return ag_cast(ctx, x, DT_F32);
	return ag_cast(ctx, ag_cast(ctx, x, DT_BF16), DT_F32);
}

/* x -> dtype ia -> f32 */
static struct tensor *run_cast_via(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	return ag_cast(ctx, ag_cast(ctx, in[0], (enum dtype)c->ia), DT_F32);
}

static struct tensor *run_embedding(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_embedding(ctx, in[0], in[1]);
}

static struct tensor *run_embedding_shard(struct ag_ctx *ctx, struct tensor **in,
					  const struct op_case *c)
{
	return ag_embedding_shard(ctx, in[0], in[1], c->ia, c->ib);
}

static struct tensor *run_layernorm(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_layernorm(ctx, in[0], in[1], in[2], 1e-5);
}

static struct tensor *run_gelu(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_gelu(ctx, in[0]);
}

static struct tensor *run_dropout(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	return ag_dropout(ctx, in[0], c->da);
}

static struct tensor *run_softmax(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_softmax(ctx, in[0]);
}

/* ag_attention with ALiBi when slopes are given, heads [h0, h0 + H) of
 * htot (0: all of q's). */
static struct tensor *attn(struct ag_ctx *ctx, struct tensor *q, struct tensor *k,
			   struct tensor *v, struct tensor *slopes, struct tensor *mask,
			   bool causal, double p, int64_t h0, int64_t htot)
{
	return ag_attention(ctx, q, k, v, &(struct ag_attn_desc){
		.pos_bias = slopes ? AG_POS_BIAS_ALIBI : AG_POS_BIAS_NONE, .slopes = slopes,
		.causal = causal, .key_mask = mask, .dropout = p, .head_offset = h0,
		.n_head_total = htot });
}

/* q, k, v, slopes, mask; causal = ia; dropout p = da */
static struct tensor *run_attention(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	return attn(ctx, in[0], in[1], in[2], in[3], in[4], c->ia, c->da, 0, 0);
}

/* As run_attention for heads [ib, ib + H) of 5 (tensor-parallel numbering
 * of the dropout mask). */
static struct tensor *run_attention_heads(struct ag_ctx *ctx, struct tensor **in,
					  const struct op_case *c)
{
	return attn(ctx, in[0], in[1], in[2], in[3], in[4], c->ia, c->da, c->ib, 5);
}

/* k stored as K^T (B, H, D, Tk) and transposed to a (B, H, Tk, D) view: at
 * Tk = 1 its stride on T is 1, below D, which the leading dimensions given
 * to cuBLAS must not use (it refuses ld < D even for one row). */
static struct tensor *run_attention_k_transposed(struct ag_ctx *ctx, struct tensor **in,
						 const struct op_case *c)
{
	struct tensor *k = ag_transpose(ctx, in[1], 2, 3);
	return attn(ctx, in[0], k, in[2], in[3], in[4], c->ia, c->da, 0, 0);
}

/* BLOOM's layout: qkv (B, T, H, 3D) sliced into strided q, k, v views. */
static struct tensor *run_attention_fused(struct ag_ctx *ctx, struct tensor **in,
					  const struct op_case *c)
{
	const int perm[] = { 0, 2, 1, 3 };
	struct tensor *qkv = in[0];
	int64_t d = qkv->shape[3] / 3;
	struct tensor *q = ag_permute(ctx, ag_slice(ctx, qkv, 3, 0, d), perm);
	struct tensor *k = ag_permute(ctx, ag_slice(ctx, qkv, 3, d, d), perm);
	struct tensor *v = ag_permute(ctx, ag_slice(ctx, qkv, 3, 2 * d, d), perm);
	return attn(ctx, q, k, v, in[1], in[2], true, c->da, 0, 0);
}

static struct tensor *run_cross_entropy(struct ag_ctx *ctx, struct tensor **in,
					const struct op_case *c)
{
	(void)c;
	return ag_cross_entropy(ctx, in[0], in[1], -100);
}

/* gelu(layernorm(x)) + x, summed over the last dim: x's gradient arrives
 * twice (accumulate), through a reduction. */
static struct tensor *run_composite(struct ag_ctx *ctx, struct tensor **in,
				    const struct op_case *c)
{
	(void)c;
	struct tensor *h = ag_gelu(ctx, ag_layernorm(ctx, in[0], in[1], in[2], 1e-5));
	return ag_sum(ctx, ag_add(ctx, h, in[0]), -1);
}

/* ---- the cases ---- */

static const struct op_case cases[] = {
	{ "matmul", run_matmul, { F(3, 5, 7), F(3, 7, 11) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "matmul_ta", run_matmul, { F(3, 7, 5), F(3, 7, 11) }, 1e-5, 1e-2, 1, 0, 0, false },
	{ "matmul_tb", run_matmul, { F(3, 5, 7), F(3, 11, 7) }, 1e-5, 1e-2, 0, 1, 0, false },
	{ "matmul_ta_tb", run_matmul, { F(3, 7, 5), F(3, 11, 7) }, 1e-5, 1e-2, 1, 1, 0, false },
	{ "matmul_4d", run_matmul, { F(2, 3, 5, 7), F(2, 3, 7, 11) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "matmul_shared_b", run_matmul, { F(2, 3, 5, 7), F(7, 11) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "matmul_shared_b_tb", run_matmul, { F(3, 5, 7), F(11, 7) }, 1e-5, 1e-2, 0, 1, 0, false },
	{ "matmul_shared_b_ta", run_matmul, { F(3, 7, 5), F(7, 11) }, 1e-5, 1e-2, 1, 0, 0, false },
	{ "matmul_shared_b_ta_tb", run_matmul, { F(3, 7, 5), F(11, 7) }, 1e-5, 1e-2, 1, 1, 0, false },
	{ "matmul_2d", run_matmul, { F(13, 7), F(7, 9) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "linear", run_linear, { F(3, 5, 7), F(11, 7), F(11) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "linear_nobias", run_linear, { F(5, 7), F(3, 7), NONE }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "linear_wide", run_linear, { F(3, 37, 19), F(45, 19), F(45) }, 1e-5, 1e-2, 0, 0, 0, false },
	/* the bias gradient's column sum over several row chunks with a ragged
	 * last one, and a ragged last block of 32 columns (colsum.cuh) */
	{ "linear_rows1000_cols33", run_linear, { F(1000, 5), F(33, 5), F(33) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "linear_rows1000_cols1030", run_linear, { F(1000, 3), F(1030, 3), F(1030) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "linear_rows4099_cols33", run_linear, { F(4099, 5), F(33, 5), F(33) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "linear_rows4099_cols1030", run_linear, { F(4099, 3), F(1030, 3), F(1030) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "add", run_add, { F(3, 5, 7), F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "add_bcast_last", run_add, { F(3, 5, 7), F(7) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "add_bcast_mid", run_add, { F(2, 3, 5, 7), F(3, 1, 7) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "add_bcast_first", run_add, { F(1, 5, 7), F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false },
	/* a bias row over many rows (the row-parallel linear's bias): a column
	 * sum over several row chunks (colsum.cuh) */
	{ "add_bcast_rows", run_add, { F(4, 1025, 33), F(33) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "mul", run_mul, { F(3, 5, 7), F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "mul_bcast_col", run_mul, { F(3, 5, 7), F(5, 1) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "mul_bcast_both", run_mul, { F(3, 1, 7), F(5, 1) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "mul_scalar", run_mul, { F(3, 5, 7), F(1) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "mul_same_input", run_square, { F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "scale", run_scale, { F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, -0.7, false },
	{ "sum_all", run_sum, { F(3, 5, 7) }, 1e-5, 1e-2, AG_DIM_ALL, 0, 0, false },
	{ "sum_all_large", run_sum, { F(3, 257, 71) }, 1e-5, 1e-2, AG_DIM_ALL, 0, 0, false },
	{ "sum_dim0", run_sum, { F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "sum_dim1", run_sum, { F(3, 5, 7) }, 1e-5, 1e-2, 1, 0, 0, false },
	{ "sum_dim_last", run_sum, { F(3, 5, 7) }, 1e-5, 1e-2, -1, 0, 0, false },
	{ "mean_all", run_mean, { F(3, 5, 7) }, 1e-5, 1e-2, AG_DIM_ALL, 0, 0, false },
	{ "mean_dim1", run_mean, { F(3, 5, 7) }, 1e-5, 1e-2, 1, 0, 0, false },
	{ "view", run_view, { F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "permute", run_permute, { F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "transpose", run_transpose, { F(3, 5, 7) }, 1e-5, 1e-2, 1, 2, 0, false },
	{ "slice", run_slice, { F(3, 5, 7) }, 1e-5, 1e-2, 1, 1, 3, false },
	{ "slice_last", run_slice, { F(3, 5, 7) }, 1e-5, 1e-2, 2, 2, 4, false },
	{ "contiguous", run_contiguous, { F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "reshape", run_reshape, { F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "cast_bf16", run_cast_bf16, { F(3, 5, 7) }, 0, 0, 0, 0, 0, false },
	{ "cast_f16", run_cast_via, { F(3, 5, 7) }, 0, 0, DT_F16, 0, 0, false },
	{ "cast_f64", run_cast_via, { F(3, 5, 7) }, 0, 0, DT_F64, 0, 0, false },
	{ "embedding", run_embedding, { IDS(7, 3, 5), F(7, 11) }, 0, 1e-2, 0, 0, 0, false },
	{ "embedding_shard", run_embedding_shard, { IDS(9, 3, 5), F(5, 11) }, 0, 1e-2, 2, 9, 0, false },
	{ "embedding_wide", run_embedding, { IDS(13, 5, 61), F(13, 300) }, 0, 1e-2, 0, 0, 0, false },
	{ "layernorm", run_layernorm, { FS(3, 3, 5, 7), F(7), F(7) }, 1e-5, 2e-2, 0, 0, 0, false },
	{ "layernorm_nobias", run_layernorm, { FS(3, 3, 5, 7), F(7), NONE }, 1e-5, 2e-2, 0, 0, 0, false },
	{ "layernorm_wide", run_layernorm, { FS(3, 5, 300), F(300), F(300) }, 1e-5, 2e-2, 0, 0, 0, false },
	/* the weight and bias gradients' column sums over several row chunks
	 * with a ragged last one, and a ragged last block of 32 columns */
	{ "layernorm_rows1000_cols33", run_layernorm, { FS(3, 1000, 33), F(33), F(33) }, 1e-5, 2e-2, 0, 0, 0, false },
	{ "layernorm_rows1000_cols1030", run_layernorm, { FS(3, 1000, 1030), F(1030), F(1030) }, 1e-5, 2e-2, 0, 0, 0, false },
	{ "layernorm_rows4099_cols33", run_layernorm, { FS(3, 4099, 33), F(33), NONE }, 1e-5, 2e-2, 0, 0, 0, false },
	{ "layernorm_rows4099_cols1030", run_layernorm, { FS(3, 4099, 1030), F(1030), F(1030) }, 1e-5, 2e-2, 0, 0, 0, false },
	{ "gelu", run_gelu, { FS(3, 3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "dropout", run_dropout, { F(3, 5, 7) }, 0, 1e-2, 0, 0, 0.3, true },
	{ "dropout_large", run_dropout, { F(3, 101, 67) }, 0, 1e-2, 0, 0, 0.5, true },
	{ "softmax", run_softmax, { FS(3, 3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "softmax_wide", run_softmax, { FS(3, 3, 1000) }, 1e-5, 1e-2, 0, 0, 0, false },
	{ "attention_causal", run_attention,
	  { F(2, 3, 7, 5), F(2, 3, 7, 5), F(2, 3, 7, 5), SLOPES(3), NONE }, 1e-5, 3e-2, 1, 0, 0, false },
	{ "attention_mask", run_attention,
	  { F(4, 3, 7, 5), F(4, 3, 7, 5), F(4, 3, 7, 5), SLOPES(3), MASK(4, 7) }, 1e-5, 3e-2, 1, 0, 0, false },
	{ "attention_plain", run_attention,
	  { F(2, 3, 7, 5), F(2, 3, 7, 5), F(2, 3, 7, 5), NONE, NONE }, 1e-5, 3e-2, 0, 0, 0, false },
	{ "attention_tq_lt_tk", run_attention,
	  { F(2, 3, 3, 5), F(2, 3, 7, 5), F(2, 3, 7, 5), SLOPES(3), MASK(2, 7) }, 1e-5, 3e-2, 1, 0, 0, false },
	{ "attention_fused_qkv", run_attention_fused,
	  { F(3, 7, 3, 15), SLOPES(3), MASK(3, 7) }, 1e-5, 3e-2, 0, 0, 0, false },
	{ "attention_dropout", run_attention,
	  { F(4, 3, 7, 5), F(4, 3, 7, 5), F(4, 3, 7, 5), SLOPES(3), MASK(4, 7) }, 1e-5, 3e-2, 1, 0, 0.2, true },
	{ "attention_heads_dropout", run_attention_heads,
	  { F(2, 3, 7, 5), F(2, 3, 7, 5), F(2, 3, 7, 5), SLOPES(3), MASK(2, 7) }, 1e-5, 3e-2, 1, 1, 0.25, true },
	{ "attention_k_transposed_t1", run_attention_k_transposed,
	  { F(2, 3, 1, 5), F(2, 3, 5, 1), F(2, 3, 1, 5), SLOPES(3), NONE }, 1e-5, 3e-2, 1, 0, 0, false },
	{ "attention_long", run_attention,
	  { F(1, 2, 300, 7), F(1, 2, 300, 7), F(1, 2, 300, 7), SLOPES(2), MASK(1, 300) }, 1e-5, 3e-2, 1, 0, 0, false },
	{ "attention_wide_head", run_attention,
	  { F(1, 3, 9, 300), F(1, 3, 9, 300), F(1, 3, 9, 300), SLOPES(3), NONE }, 1e-5, 3e-2, 1, 0, 0, false },
	{ "cross_entropy", run_cross_entropy, { FS(3, 3, 5, 11), TGT(11, 3, 5) }, 1e-5, 2e-2, 0, 0, 0, false },
	{ "cross_entropy_all_ignored", run_cross_entropy, { F(3, 5, 11), TGT(0, 3, 5) }, 1e-5, 2e-2, 0, 0, 0, false },
	{ "cross_entropy_wide", run_cross_entropy, { FS(3, 7, 1000), TGT(1000, 7) }, 1e-5, 2e-2, 0, 0, 0, false },
	{ "composite", run_composite, { FS(2, 3, 5, 7), F(7), F(7) }, 1e-5, 2e-2, 0, 0, 0, false },
};
#define N_CASES ((int)(sizeof(cases) / sizeof(cases[0])))

/* ---- building inputs ---- */

/* Host tensor for spec s (index i of its case), in arena a: f32 or i32. */
static struct tensor *host_input(struct arena *a, const struct in_spec *s, int i,
				 bool bf16_exact)
{
	if (s->kind == IN_NONE)
		return NULL;
	bool is_float = s->kind == IN_FLOAT || s->kind == IN_SLOPES;
	struct tensor *t = tensor_new(a, is_float ? DT_F32 : DT_I32, s->ndim, s->shape);
	int64_t n = tensor_numel(t);
	int32_t *iv = t->data;
	switch (s->kind) {
	case IN_FLOAT:
		cuda_test_fill(t, 1000 + 17 * (uint64_t)i, s->scale ? s->scale : 1.0, bf16_exact);
		break;
	case IN_SLOPES: {
		double sl[64];
		HUG_ASSERT(n <= 64);
		bloom_alibi_slopes((int)n, sl);
		for (int64_t j = 0; j < n && bf16_exact; j++)
			sl[j] = bf16_to_f32(f32_to_bf16((float)sl[j]));
		tensor_write_f64(t, sl);
		break;
	}
	case IN_IDS:
		for (int64_t j = 0; j < n; j++)
			iv[j] = (int32_t)((j * 5 + j / 3) % s->range);
		break;
	case IN_TARGETS:
		for (int64_t j = 0; j < n; j++)
			iv[j] = s->range == 0 || j % 4 == 1 ? -100 : (int32_t)((j * 7 + 2) % s->range);
		break;
	case IN_MASK: {
		int64_t b = s->shape[0], tk = s->shape[1];
		for (int64_t r = 0; r < b; r++)
			for (int64_t j = 0; j < tk; j++) {
				int32_t keep = 1;
				if (r % 4 == 1) /* left padding: the first queries see nothing */
					keep = j >= 3;
				else if (r % 4 == 2) /* a hole */
					keep = j != 2 && j != 3;
				else if (r % 4 == 3) /* no tokens at all */
					keep = 0;
				iv[r * tk + j] = keep;
			}
		break;
	}
	default:
		break;
	}
	return t;
}

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
		struct tensor *h = host_input(&host, &c->in[i], i, bf16_exact);
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

/* Runs every case whose name starts with `prefix`. */
static void parity_family(const char *prefix)
{
	int n = 0;
	for (int i = 0; i < N_CASES; i++) {
		if (strncmp(cases[i].name, prefix, strlen(prefix)))
			continue;
		parity(&cases[i], DT_F32);
		parity(&cases[i], DT_BF16);
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

FAMILY_TEST(matmul)
FAMILY_TEST(linear)
FAMILY_TEST(add)
FAMILY_TEST(mul)
FAMILY_TEST(scale)
FAMILY_TEST(sum)
FAMILY_TEST(mean)
FAMILY_TEST(view)
FAMILY_TEST(permute)
FAMILY_TEST(transpose)
FAMILY_TEST(slice)
FAMILY_TEST(contiguous)
FAMILY_TEST(reshape)
FAMILY_TEST(cast)
FAMILY_TEST(embedding)
FAMILY_TEST(layernorm)
FAMILY_TEST(gelu)
FAMILY_TEST(dropout)
FAMILY_TEST(softmax)
FAMILY_TEST(attention)
FAMILY_TEST(cross_entropy)
FAMILY_TEST(composite)

/* The CUDA table has a kernel for every op (a forward unless the op is a
 * view) and this file a case for every op: a new op must add both. The
 * communication ops (tp_*) share one implementation across backends and
 * are tested with the parallel code. Needs no GPU. */
TEST(cuda_backend_table_complete)
{
	for (int op = 0; op < AG_OP_COUNT; op++) {
		const char *name = ag_op_info[op].name;
		if (!ag_cuda_backend.op[op].backward)
			test_fail_at(__FILE__, __LINE__, "cuda: no backward kernel for %s", name);
		if (!ag_op_info[op].is_view && !ag_cuda_backend.op[op].forward)
			test_fail_at(__FILE__, __LINE__, "cuda: no forward kernel for %s", name);
		if (!strncmp(name, "tp_", 3))
			continue;
		bool found = false;
		for (int i = 0; i < N_CASES && !found; i++)
			found = !strncmp(cases[i].name, name, strlen(name));
		if (!found)
			test_fail_at(__FILE__, __LINE__, "no parity case for op %s", name);
	}
	CHECK(ag_cuda_backend.device == DEV_CUDA);
	CHECK(ag_cuda_backend.accumulate && ag_cuda_backend.fill && ag_cuda_backend.copy);
	CHECK(ag_cuda_backend.find_out_of_range != NULL);
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
