/* op_cases.c: the per-op test cases (see op_cases.h): run functions and the
 * table. Shapes are odd on purpose; the long and wide cases reach the
 * kernels' blocking (row chunks, column blocks, attention row blocks). */
#include "op_cases.h"

#include <string.h>

#include "../autograd/checkpoint.h"
#include "../base/panic.h"
#include "../nn/bloom.h"
#include "test_cuda_util.h"

/* Input specs: a float input that needs a gradient (F, FS with a scale),
 * ids or targets in [0, r), a mask, ALiBi slopes, or nothing. */
#define NDIM(...) ((int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)))
#define F(...) { IN_FLOAT, NDIM(__VA_ARGS__), { __VA_ARGS__ }, true, 1.0, 0 }
#define FS(s, ...) { IN_FLOAT, NDIM(__VA_ARGS__), { __VA_ARGS__ }, true, s, 0 }
#define IDS(r, ...) { IN_IDS, NDIM(__VA_ARGS__), { __VA_ARGS__ }, false, 0, r }
#define TGT(r, ...) { IN_TARGETS, NDIM(__VA_ARGS__), { __VA_ARGS__ }, false, 0, r }
#define MASK(b, t) { IN_MASK, 2, { b, t }, false, 0, 0 }
#define SLOPES(h) { IN_SLOPES, 1, { h }, false, 0, 0 }
#define SEGS(b, t) { IN_SEGS, 2, { b, t }, false, 0, 0 }
#define NONE { IN_NONE, 0, { 0 }, false, 0, 0 }
/* a float input that needs no gradient (inv_freq) */
#define CONST(s, ...) { IN_FLOAT, NDIM(__VA_ARGS__), { __VA_ARGS__ }, false, s, 0 }

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
 * htot (0: all of q's), a sliding window (0: none). */
static struct tensor *attn_w(struct ag_ctx *ctx, struct tensor *q, struct tensor *k,
			     struct tensor *v, struct tensor *slopes, struct tensor *mask,
			     bool causal, double p, int64_t h0, int64_t htot, int64_t window)
{
	return ag_attention(ctx, q, k, v, &(struct ag_attn_desc){
		.pos_bias = slopes ? AG_POS_BIAS_ALIBI : AG_POS_BIAS_NONE, .slopes = slopes,
		.causal = causal, .window = window, .key_mask = mask, .dropout = p,
		.head_offset = h0, .n_head_total = htot });
}

static struct tensor *attn(struct ag_ctx *ctx, struct tensor *q, struct tensor *k,
			   struct tensor *v, struct tensor *slopes, struct tensor *mask,
			   bool causal, double p, int64_t h0, int64_t htot)
{
	return attn_w(ctx, q, k, v, slopes, mask, causal, p, h0, htot, 0);
}

/* q, k, v, slopes, mask; causal = ia; dropout p = da */
static struct tensor *run_attention(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	return attn(ctx, in[0], in[1], in[2], in[3], in[4], c->ia, c->da, 0, 0);
}

/* As run_attention with the exact kernel (the probabilities saved). */
static struct tensor *run_attention_exact(struct ag_ctx *ctx, struct tensor **in,
					  const struct op_case *c)
{
	return ag_attention(ctx, in[0], in[1], in[2], &(struct ag_attn_desc){
		.pos_bias = in[3] ? AG_POS_BIAS_ALIBI : AG_POS_BIAS_NONE, .slopes = in[3],
		.causal = c->ia, .window = c->ib, .key_mask = in[4], .dropout = c->da,
		.kernel = AG_ATTN_KERNEL_EXACT });
}

/* Packed documents: in[4] holds the segments (no padding mask); causal;
 * a window of ib keys (0: none); ia: the exact kernel. */
static struct tensor *run_attention_segments(struct ag_ctx *ctx, struct tensor **in,
					     const struct op_case *c)
{
	return ag_attention(ctx, in[0], in[1], in[2], &(struct ag_attn_desc){
		.pos_bias = in[3] ? AG_POS_BIAS_ALIBI : AG_POS_BIAS_NONE, .slopes = in[3],
		.causal = true, .window = c->ib, .segments = in[4], .dropout = c->da,
		.kernel = c->ia ? AG_ATTN_KERNEL_EXACT : AG_ATTN_KERNEL_TILED });
}

/* As run_attention for heads [ib, ib + H) of 5 (tensor-parallel numbering
 * of the dropout mask). */
static struct tensor *run_attention_heads(struct ag_ctx *ctx, struct tensor **in,
					  const struct op_case *c)
{
	return attn(ctx, in[0], in[1], in[2], in[3], in[4], c->ia, c->da, c->ib, 5);
}

/* Causal attention with a sliding window of ib keys; dropout p = da;
 * ia: heads [1, 1 + H) of H + 2 when set (tensor-parallel numbering). */
static struct tensor *run_attention_window(struct ag_ctx *ctx, struct tensor **in,
					   const struct op_case *c)
{
	int64_t h = in[0]->shape[1];
	return attn_w(ctx, in[0], in[1], in[2], in[3], in[4], true, c->da, c->ia ? 1 : 0,
		      c->ia ? h + 2 : 0, c->ib);
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

/* ---- the Llama families' layers ---- */

/* eps = da */
static struct tensor *run_rmsnorm(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	return ag_rmsnorm(ctx, in[0], in[1], c->da);
}

/* QK-norm as Qwen3 applies it: x (B, T, H, D) seen as (B, H, T, D) (a
 * strided view), normalised over D. */
static struct tensor *run_rmsnorm_heads(struct ag_ctx *ctx, struct tensor **in,
					const struct op_case *c)
{
	struct tensor *x = ag_permute(ctx, in[0], (const int[]){ 0, 2, 1, 3 });
	return ag_rmsnorm(ctx, x, in[1], c->da);
}

/* x, pos, and inv_freq given in the case's float dtype, made f64 here (on
 * the device of the run) as ag_rope wants. */
static struct tensor *run_rope(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_rope(ctx, in[0], in[1], ag_cast(ctx, in[2], DT_F64));
}

/* x (B, T, H, 3D) a fused projection: its middle third, seen as
 * (B, H, T, D) (strides with a unit stride on D: no copy). */
static struct tensor *run_rope_view(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	int64_t d = in[0]->shape[3] / 3;
	struct tensor *x = ag_permute(ctx, ag_slice(ctx, in[0], 3, d, d),
				      (const int[]){ 0, 2, 1, 3 });
	return ag_rope(ctx, x, in[1], ag_cast(ctx, in[2], DT_F64));
}

static struct tensor *run_silu(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_silu(ctx, in[0]);
}

static struct tensor *run_swiglu(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_swiglu(ctx, in[0], in[1]);
}

/* gate and up the two halves of one fused (..., 2F) projection */
static struct tensor *run_swiglu_fused(struct ag_ctx *ctx, struct tensor **in,
				       const struct op_case *c)
{
	(void)c;
	int last = in[0]->ndim - 1;
	int64_t f = in[0]->shape[last] / 2;
	return ag_swiglu(ctx, ag_slice(ctx, in[0], last, 0, f), ag_slice(ctx, in[0], last, f, f));
}

/* Two ranks in name only: the all-reduce leaves the buffer as it is. */
static void noop_allreduce(void *state, void *buf, int64_t n, enum dtype dt, bool max,
			   enum device dev)
{
	(void)state, (void)buf, (void)n, (void)dt, (void)max, (void)dev;
}

static const struct ag_collective pair = { NULL, 0, 2, noop_allreduce };

static struct tensor *run_tp_copy(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_tp_copy(ctx, in[0], &pair);
}

static struct tensor *run_tp_reduce(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	(void)c;
	return ag_tp_reduce(ctx, in[0], &pair);
}

/* A recomputation region (autograd/checkpoint.h) over x, w, b:
 * dropout(gelu(layernorm(x, w, b)), p = da) * x, x read twice, returned as
 * a transposed view (the region's output is copied to the step arena). */
static struct tensor *ckpt_body(struct ag_ctx *ctx, const void *state, struct tensor *const *in)
{
	const double *p = state;
	struct tensor *h = ag_gelu(ctx, ag_layernorm(ctx, in[0], in[1], in[2], 1e-5));
	return ag_transpose(ctx, ag_mul(ctx, ag_dropout(ctx, h, *p), in[0]), 0, 2);
}

static struct tensor *run_checkpoint(struct ag_ctx *ctx, struct tensor **in, const struct op_case *c)
{
	return ag_checkpoint(ctx, ckpt_body, &c->da, sizeof(c->da), 3, in);
}

/* Attention under selective recomputation (ag_attention_rc): q, k, v,
 * slopes, mask; causal; dropout p = da. */
static struct tensor *run_checkpoint_attention(struct ag_ctx *ctx, struct tensor **in,
					       const struct op_case *c)
{
	const struct ag_attn_desc d = {
		.pos_bias = AG_POS_BIAS_ALIBI, .slopes = in[3], .causal = true,
		.key_mask = in[4], .dropout = c->da,
	};
	enum ag_recompute was = ctx->recompute;
	ctx->recompute = AG_RECOMPUTE_SELECTIVE;
	struct tensor *o = ag_attention_rc(ctx, in[0], in[1], in[2], &d);
	ctx->recompute = was;
	return o;
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

const struct op_case op_cases[] = {
	{ "matmul", run_matmul, { F(3, 5, 7), F(3, 7, 11) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "matmul_ta", run_matmul, { F(3, 7, 5), F(3, 7, 11) }, 1e-5, 1e-2, 1, 0, 0, false, 0, false },
	{ "matmul_tb", run_matmul, { F(3, 5, 7), F(3, 11, 7) }, 1e-5, 1e-2, 0, 1, 0, false, 0, false },
	{ "matmul_ta_tb", run_matmul, { F(3, 7, 5), F(3, 11, 7) }, 1e-5, 1e-2, 1, 1, 0, false, 0, false },
	{ "matmul_4d", run_matmul, { F(2, 3, 5, 7), F(2, 3, 7, 11) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "matmul_shared_b", run_matmul, { F(2, 3, 5, 7), F(7, 11) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "matmul_shared_b_tb", run_matmul, { F(3, 5, 7), F(11, 7) }, 1e-5, 1e-2, 0, 1, 0, false, 0, false },
	{ "matmul_shared_b_ta", run_matmul, { F(3, 7, 5), F(7, 11) }, 1e-5, 1e-2, 1, 0, 0, false, 0, false },
	{ "matmul_shared_b_ta_tb", run_matmul, { F(3, 7, 5), F(11, 7) }, 1e-5, 1e-2, 1, 1, 0, false, 0, false },
	{ "matmul_2d", run_matmul, { F(13, 7), F(7, 9) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "linear", run_linear, { F(3, 5, 7), F(11, 7), F(11) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "linear_nobias", run_linear, { F(5, 7), F(3, 7), NONE }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "linear_wide", run_linear, { F(3, 37, 19), F(45, 19), F(45) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	/* the bias gradient's column sum over several row chunks with a ragged
	 * last one, and a ragged last block of 32 columns (colsum.cuh) */
	{ "linear_rows1000_cols33", run_linear, { F(1000, 5), F(33, 5), F(33) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "linear_rows1000_cols1030", run_linear, { F(1000, 3), F(1030, 3), F(1030) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "linear_rows4099_cols33", run_linear, { F(4099, 5), F(33, 5), F(33) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "linear_rows4099_cols1030", run_linear, { F(4099, 3), F(1030, 3), F(1030) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "add", run_add, { F(3, 5, 7), F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "add_bcast_last", run_add, { F(3, 5, 7), F(7) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "add_bcast_mid", run_add, { F(2, 3, 5, 7), F(3, 1, 7) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "add_bcast_first", run_add, { F(1, 5, 7), F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	/* a bias row over many rows (the row-parallel linear's bias): a column
	 * sum over several row chunks (colsum.cuh) */
	{ "add_bcast_rows", run_add, { F(4, 1025, 33), F(33) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "mul", run_mul, { F(3, 5, 7), F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "mul_bcast_col", run_mul, { F(3, 5, 7), F(5, 1) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "mul_bcast_both", run_mul, { F(3, 1, 7), F(5, 1) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "mul_scalar", run_mul, { F(3, 5, 7), F(1) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "mul_same_input", run_square, { F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "scale", run_scale, { F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, -0.7, false, 0, false },
	{ "sum_all", run_sum, { F(3, 5, 7) }, 1e-5, 1e-2, AG_DIM_ALL, 0, 0, false, 0, false },
	{ "sum_all_large", run_sum, { F(3, 257, 71) }, 1e-5, 1e-2, AG_DIM_ALL, 0, 0, false, 0, false },
	{ "sum_dim0", run_sum, { F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "sum_dim1", run_sum, { F(3, 5, 7) }, 1e-5, 1e-2, 1, 0, 0, false, 0, false },
	{ "sum_dim_last", run_sum, { F(3, 5, 7) }, 1e-5, 1e-2, -1, 0, 0, false, 0, false },
	{ "mean_all", run_mean, { F(3, 5, 7) }, 1e-5, 1e-2, AG_DIM_ALL, 0, 0, false, 0, false },
	{ "mean_dim1", run_mean, { F(3, 5, 7) }, 1e-5, 1e-2, 1, 0, 0, false, 0, false },
	{ "view", run_view, { F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "permute", run_permute, { F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "transpose", run_transpose, { F(3, 5, 7) }, 1e-5, 1e-2, 1, 2, 0, false, 0, false },
	{ "slice", run_slice, { F(3, 5, 7) }, 1e-5, 1e-2, 1, 1, 3, false, 0, false },
	{ "slice_last", run_slice, { F(3, 5, 7) }, 1e-5, 1e-2, 2, 2, 4, false, 0, false },
	{ "contiguous", run_contiguous, { F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "reshape", run_reshape, { F(3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "cast_bf16", run_cast_bf16, { F(3, 5, 7) }, 0, 0, 0, 0, 0, false, 0, true },
	{ "cast_f16", run_cast_via, { F(3, 5, 7) }, 0, 0, DT_F16, 0, 0, false, 0, true },
	/* in the f64 gradient check: x -> f64 (x itself) -> f32, whose rounding
	 * wants a long step */
	{ "cast_f64", run_cast_via, { F(3, 5, 7) }, 0, 0, DT_F64, 0, 0, false, 0.25, false },
	{ "embedding", run_embedding, { IDS(7, 3, 5), F(7, 11) }, 0, 1e-2, 0, 0, 0, false, 0, false },
	{ "embedding_shard", run_embedding_shard, { IDS(9, 3, 5), F(5, 11) }, 0, 1e-2, 2, 9, 0, false, 0, false },
	{ "embedding_wide", run_embedding, { IDS(13, 5, 61), F(13, 300) }, 0, 1e-2, 0, 0, 0, false, 0, false },
	{ "layernorm", run_layernorm, { FS(3, 3, 5, 7), F(7), F(7) }, 1e-5, 2e-2, 0, 0, 0, false, 0, false },
	{ "layernorm_nobias", run_layernorm, { FS(3, 3, 5, 7), F(7), NONE }, 1e-5, 2e-2, 0, 0, 0, false, 0, false },
	{ "layernorm_wide", run_layernorm, { FS(3, 5, 300), F(300), F(300) }, 1e-5, 2e-2, 0, 0, 0, false, 0, false },
	/* the weight and bias gradients' column sums over several row chunks
	 * with a ragged last one, and a ragged last block of 32 columns */
	{ "layernorm_rows1000_cols33", run_layernorm, { FS(3, 1000, 33), F(33), F(33) }, 1e-5, 2e-2, 0, 0, 0, false, 0, false },
	{ "layernorm_rows1000_cols1030", run_layernorm, { FS(3, 1000, 1030), F(1030), F(1030) }, 1e-5, 2e-2, 0, 0, 0, false, 0, false },
	{ "layernorm_rows4099_cols33", run_layernorm, { FS(3, 4099, 33), F(33), NONE }, 1e-5, 2e-2, 0, 0, 0, false, 0, false },
	{ "layernorm_rows4099_cols1030", run_layernorm, { FS(3, 4099, 1030), F(1030), F(1030) }, 1e-5, 2e-2, 0, 0, 0, false, 0, false },
	{ "gelu", run_gelu, { FS(3, 3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "dropout", run_dropout, { F(3, 5, 7) }, 0, 1e-2, 0, 0, 0.3, true, 0, false },
	{ "dropout_large", run_dropout, { F(3, 101, 67) }, 0, 1e-2, 0, 0, 0.5, true, 0, false },
	{ "softmax", run_softmax, { FS(3, 3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "softmax_wide", run_softmax, { FS(3, 3, 1000) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "attention_causal", run_attention,
	  { F(2, 3, 7, 5), F(2, 3, 7, 5), F(2, 3, 7, 5), SLOPES(3), NONE }, 1e-5, 3e-2, 1, 0, 0, false, 0, false },
	{ "attention_mask", run_attention,
	  { F(4, 3, 7, 5), F(4, 3, 7, 5), F(4, 3, 7, 5), SLOPES(3), MASK(4, 7) }, 1e-5, 3e-2, 1, 0, 0, false, 0, false },
	{ "attention_plain", run_attention,
	  { F(2, 3, 7, 5), F(2, 3, 7, 5), F(2, 3, 7, 5), NONE, NONE }, 1e-5, 3e-2, 0, 0, 0, false, 0, false },
	{ "attention_tq_lt_tk", run_attention,
	  { F(2, 3, 3, 5), F(2, 3, 7, 5), F(2, 3, 7, 5), SLOPES(3), MASK(2, 7) }, 1e-5, 3e-2, 1, 0, 0, false, 0, false },
	{ "attention_fused_qkv", run_attention_fused,
	  { F(3, 7, 3, 15), SLOPES(3), MASK(3, 7) }, 1e-5, 3e-2, 0, 0, 0, false, 0, false },
	{ "attention_dropout", run_attention,
	  { F(4, 3, 7, 5), F(4, 3, 7, 5), F(4, 3, 7, 5), SLOPES(3), MASK(4, 7) }, 1e-5, 3e-2, 1, 0, 0.2, true, 0, false },
	{ "attention_heads_dropout", run_attention_heads,
	  { F(2, 3, 7, 5), F(2, 3, 7, 5), F(2, 3, 7, 5), SLOPES(3), MASK(2, 7) }, 1e-5, 3e-2, 1, 1, 0.25, true, 0, false },
	{ "attention_k_transposed_t1", run_attention_k_transposed,
	  { F(2, 3, 1, 5), F(2, 3, 5, 1), F(2, 3, 1, 5), SLOPES(3), NONE }, 1e-5, 3e-2, 1, 0, 0, false, 0, false },
	{ "attention_long", run_attention,
	  { F(1, 2, 300, 7), F(1, 2, 300, 7), F(1, 2, 300, 7), SLOPES(2), MASK(1, 300) }, 1e-5, 3e-2, 1, 0, 0, false, 0, false },
	{ "attention_wide_head", run_attention,
	  { F(1, 3, 9, 300), F(1, 3, 9, 300), F(1, 3, 9, 300), SLOPES(3), NONE }, 1e-5, 3e-2, 1, 0, 0, false, 0, false },
	/* grouped-query (4 query heads over 2 key/value heads) and multi-query
	 * attention, without a position bias as the RoPE families run it */
	{ "attention_gqa", run_attention,
	  { F(4, 4, 7, 5), F(4, 2, 7, 5), F(4, 2, 7, 5), NONE, MASK(4, 7) }, 1e-5, 3e-2, 1, 0, 0, false, 0, false },
	{ "attention_gqa_alibi", run_attention,
	  { F(2, 4, 7, 5), F(2, 2, 7, 5), F(2, 2, 7, 5), SLOPES(4), MASK(2, 7) }, 1e-5, 3e-2, 1, 0, 0, false, 0, false },
	{ "attention_gqa_plain", run_attention,
	  { F(2, 6, 7, 5), F(2, 2, 7, 5), F(2, 2, 7, 5), NONE, NONE }, 1e-5, 3e-2, 0, 0, 0, false, 0, false },
	{ "attention_mqa", run_attention,
	  { F(4, 3, 7, 5), F(4, 1, 7, 5), F(4, 1, 7, 5), NONE, MASK(4, 7) }, 1e-5, 3e-2, 1, 0, 0, false, 0, false },
	{ "attention_gqa_tq_lt_tk", run_attention,
	  { F(2, 4, 3, 5), F(2, 2, 7, 5), F(2, 2, 7, 5), NONE, MASK(2, 7) }, 1e-5, 3e-2, 1, 0, 0, false, 0, false },
	{ "attention_gqa_dropout", run_attention,
	  { F(4, 4, 7, 5), F(4, 2, 7, 5), F(4, 2, 7, 5), NONE, MASK(4, 7) }, 1e-5, 3e-2, 1, 0, 0.2, true, 0, false },
	{ "attention_heads_gqa_dropout", run_attention_heads,
	  { F(2, 4, 7, 5), F(2, 2, 7, 5), F(2, 2, 7, 5), NONE, MASK(2, 7) }, 1e-5, 3e-2, 1, 1, 0.25, true, 0, false },
	{ "attention_heads_mqa_dropout", run_attention_heads,
	  { F(2, 3, 7, 5), F(2, 1, 7, 5), F(2, 1, 7, 5), SLOPES(3), MASK(2, 7) }, 1e-5, 3e-2, 1, 2, 0.25, true, 0, false },
	{ "attention_gqa_long", run_attention,
	  { F(1, 4, 150, 7), F(1, 2, 150, 7), F(1, 2, 150, 7), NONE, MASK(1, 150) }, 1e-5, 3e-2, 1, 0, 0, false, 0, false },
	/* the sliding window (ib keys), with the padding mask (full,
	 * left-padded, a hole, empty), grouped heads, Tq < Tk, ALiBi, dropout,
	 * tensor-parallel heads, and past the CPU's blocks of 64 query rows */
	{ "attention_window", run_attention_window,
	  { F(4, 4, 9, 4), F(4, 2, 9, 4), F(4, 2, 9, 4), NONE, MASK(4, 9) }, 1e-5, 3e-2, 0, 4, 0, false, 0, false },
	{ "attention_window_mha", run_attention_window,
	  { F(2, 3, 9, 5), F(2, 3, 9, 5), F(2, 3, 9, 5), NONE, NONE }, 1e-5, 3e-2, 0, 3, 0, false, 0, false },
	{ "attention_window_one", run_attention_window,
	  { F(2, 2, 6, 5), F(2, 1, 6, 5), F(2, 1, 6, 5), NONE, MASK(2, 6) }, 1e-5, 3e-2, 0, 1, 0, false, 0, false },
	{ "attention_window_tq_lt_tk", run_attention_window,
	  { F(4, 4, 3, 5), F(4, 2, 9, 5), F(4, 2, 9, 5), NONE, MASK(4, 9) }, 1e-5, 3e-2, 0, 4, 0, false, 0, false },
	{ "attention_window_alibi", run_attention_window,
	  { F(4, 2, 9, 5), F(4, 2, 9, 5), F(4, 2, 9, 5), SLOPES(2), MASK(4, 9) }, 1e-5, 3e-2, 0, 2, 0, false, 0, false },
	{ "attention_window_dropout", run_attention_window,
	  { F(4, 4, 9, 5), F(4, 1, 9, 5), F(4, 1, 9, 5), NONE, MASK(4, 9) }, 1e-5, 3e-2, 1, 4, 0.2, true, 0, false },
	{ "attention_window_long", run_attention_window,
	  { F(1, 4, 150, 7), F(1, 2, 150, 7), F(1, 2, 150, 7), NONE, MASK(1, 150) }, 1e-5, 3e-2, 0, 37, 0, false, 0, false },
	{ "attention_window_wide", run_attention_window,
	  { F(1, 2, 20, 5), F(1, 2, 20, 5), F(1, 2, 20, 5), NONE, NONE }, 1e-5, 3e-2, 0, 50, 0, false, 0, false },
	/* the tiled kernel (the default above) at sizes off its tiles (16
	 * query rows, 32 keys), head sizes 24, 40, 64; document segments with
	 * both kernels; the exact kernel itself */
	{ "attention_tiled_gqa_d24", run_attention,
	  { F(2, 6, 77, 24), F(2, 2, 77, 24), F(2, 2, 77, 24), NONE, MASK(2, 77) }, 1e-5, 3e-2, 1, 0, 0, false, 0, false },
	{ "attention_tiled_d40_window", run_attention_window,
	  { F(2, 6, 70, 40), F(2, 2, 70, 40), F(2, 2, 70, 40), NONE, MASK(2, 70) }, 1e-5, 3e-2, 0, 23, 0, false, 0, false },
	{ "attention_tiled_d64_alibi", run_attention,
	  { F(2, 3, 45, 64), F(2, 3, 45, 64), F(2, 3, 45, 64), SLOPES(3), MASK(2, 45) }, 1e-5, 3e-2, 1, 0, 0, false, 0, false },
	{ "attention_tiled_noncausal_tq_lt_tk", run_attention,
	  { F(2, 4, 19, 9), F(2, 2, 53, 9), F(2, 2, 53, 9), SLOPES(4), MASK(2, 53) }, 1e-5, 3e-2, 0, 0, 0, false, 0, false },
	{ "attention_segments", run_attention_segments,
	  { F(2, 4, 50, 8), F(2, 2, 50, 8), F(2, 2, 50, 8), SLOPES(4), SEGS(2, 50) }, 1e-5, 3e-2, 0, 0, 0, false, 0, false },
	{ "attention_segments_window_dropout", run_attention_segments,
	  { F(2, 6, 41, 5), F(2, 2, 41, 5), F(2, 2, 41, 5), NONE, SEGS(2, 41) }, 1e-5, 3e-2, 0, 9, 0.2, true, 0, false },
	{ "attention_segments_exact", run_attention_segments,
	  { F(2, 4, 50, 8), F(2, 2, 50, 8), F(2, 2, 50, 8), SLOPES(4), SEGS(2, 50) }, 1e-5, 3e-2, 1, 0, 0, false, 0, false },
	{ "attention_exact_mask", run_attention_exact,
	  { F(4, 3, 7, 5), F(4, 3, 7, 5), F(4, 3, 7, 5), SLOPES(3), MASK(4, 7) }, 1e-5, 3e-2, 1, 0, 0, false, 0, false },
	{ "attention_exact_gqa_window_dropout", run_attention_exact,
	  { F(2, 6, 40, 7), F(2, 2, 40, 7), F(2, 2, 40, 7), NONE, MASK(2, 40) }, 1e-5, 3e-2, 1, 11, 0.2, true, 0, false },
	{ "cross_entropy", run_cross_entropy, { FS(3, 3, 5, 11), TGT(11, 3, 5) }, 1e-5, 2e-2, 0, 0, 0, false, 0, false },
	{ "cross_entropy_all_ignored", run_cross_entropy, { F(3, 5, 11), TGT(0, 3, 5) }, 1e-5, 2e-2, 0, 0, 0, false, 0, false },
	{ "cross_entropy_wide", run_cross_entropy, { FS(3, 7, 1000), TGT(1000, 7) }, 1e-5, 2e-2, 0, 0, 0, false, 0, false },
	{ "rmsnorm", run_rmsnorm, { FS(3, 3, 5, 7), F(7) }, 1e-5, 2e-2, 0, 0, 1e-6, false, 0, false },
	{ "rmsnorm_noweight", run_rmsnorm, { FS(3, 3, 5, 7), NONE }, 1e-5, 2e-2, 0, 0, 1e-5, false, 0, false },
	/* eps large against mean(x^2): its term shows in every gradient */
	{ "rmsnorm_eps", run_rmsnorm, { FS(0.3, 4, 9), F(9) }, 1e-5, 2e-2, 0, 0, 0.05, false, 0, false },
	{ "rmsnorm_heads", run_rmsnorm_heads, { FS(2, 2, 5, 3, 8), F(8) }, 1e-5, 2e-2, 0, 0, 1e-6, false, 0, false },
	{ "rmsnorm_wide", run_rmsnorm, { FS(3, 5, 300), F(300) }, 1e-5, 2e-2, 0, 0, 1e-6, false, 0, false },
	/* rows wider than a warp's (a block per row on CUDA), and the weight
	 * gradient's column sum over row chunks with ragged ends */
	{ "rmsnorm_rows1000_cols1030", run_rmsnorm, { FS(3, 1000, 1030), F(1030) }, 1e-5, 2e-2, 0, 0, 1e-6, false, 0, false },
	{ "rmsnorm_rows4099_cols33", run_rmsnorm, { FS(3, 4099, 33), F(33) }, 1e-5, 2e-2, 0, 0, 1e-6, false, 0, false },
	{ "rope", run_rope, { F(2, 3, 5, 8), IDS(40, 2, 5), CONST(1, 4) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "rope_view", run_rope_view, { F(2, 5, 3, 18), IDS(17, 2, 5), CONST(1, 3) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	/* more pairs than the CPU's span of cos/sin, positions up to 5000 */
	{ "rope_wide", run_rope, { F(2, 3, 7, 300), IDS(5000, 2, 7), CONST(1, 150) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "silu", run_silu, { FS(4, 3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "silu_wide", run_silu, { FS(100, 3, 101, 67) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "swiglu", run_swiglu, { FS(4, 3, 5, 7), FS(3, 3, 5, 7) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "swiglu_fused", run_swiglu_fused, { FS(4, 3, 5, 14) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	{ "swiglu_wide", run_swiglu, { FS(100, 3, 101, 67), F(3, 101, 67) }, 1e-5, 1e-2, 0, 0, 0, false, 0, false },
	/* the communication ops over a group of two whose all-reduce does
	 * nothing (one process): identity forward and backward, in kernels */
	{ "tp_copy", run_tp_copy, { F(3, 5, 7) }, 0, 0, 0, 0, 0, false, 0, false },
	{ "tp_reduce", run_tp_reduce, { F(3, 5, 7) }, 0, 0, 0, 0, 0, false, 0, false },
	{ "checkpoint", run_checkpoint, { FS(2, 3, 5, 7), F(7), F(7) }, 1e-5, 2e-2, 0, 0, 0, false, 0, false },
	{ "checkpoint_dropout", run_checkpoint, { FS(2, 3, 5, 7), F(7), F(7) }, 1e-5, 2e-2, 0, 0, 0.3, true, 0, false },
	{ "checkpoint_attention", run_checkpoint_attention,
	  { F(2, 3, 6, 4), F(2, 3, 6, 4), F(2, 3, 6, 4), SLOPES(3), MASK(2, 6) }, 1e-5, 3e-2, 0, 0, 0.2, true, 0, false },
	{ "composite", run_composite, { FS(2, 3, 5, 7), F(7), F(7) }, 1e-5, 2e-2, 0, 0, 0, false, 0, false },
};
const int op_n_cases = (int)(sizeof(op_cases) / sizeof(op_cases[0]));

/* ---- building inputs ---- */

bool op_case_is_of(const struct op_case *c, const char *op)
{
	size_t n = strlen(op);
	return !strncmp(c->name, op, n) && (c->name[n] == 0 || c->name[n] == '_');
}

struct tensor *op_case_input(struct arena *a, const struct in_spec *s, int i,
			     enum dtype float_dt, bool bf16_exact)
{
	if (s->kind == IN_NONE)
		return NULL;
	bool is_float = s->kind == IN_FLOAT || s->kind == IN_SLOPES;
	struct tensor *t = tensor_new(a, is_float ? float_dt : DT_I32, s->ndim, s->shape);
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
	case IN_SEGS: {
		int64_t b = s->shape[0], tk = s->shape[1];
		for (int64_t r = 0; r < b; r++)
			for (int64_t j = 0; j < tk; j++)
				iv[r * tk + j] = (int32_t)((j + 3 * r) / (7 + 4 * (r % 3)));
		break;
	}
	default:
		break;
	}
	return t;
}
