/* autograd.h: the public face of the engine: the context (step arena, tape,
 * grad mode, dropout RNG, sticky error), the ops, and backward.
 *
 * Errors. An op handed inputs it cannot take (shape, dtype or device
 * mismatch, an index out of range) records a message in ctx->err that names
 * the op and the inputs, e.g.
 *   matmul: inner dims differ: a is [2, 3, 5] f32, b is [2, 4, 7] f32
 * and returns NULL. The error is sticky: every later op returns NULL without
 * work, so a caller may check once, after a whole forward pass, with
 * ag_failed(). ag_ctx_reset() clears it.
 *
 * Memory. Results, saved tensors, tape nodes and gradients of non-leaf
 * tensors come from ctx->step and die at ag_ctx_reset(). Leaves that need a
 * gradient are marked with tensor_set_requires_grad() and keep their
 * gradient buffer in the arena given there; backward accumulates into it. */
#ifndef HUG_AUTOGRAD_AUTOGRAD_H
#define HUG_AUTOGRAD_AUTOGRAD_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/error.h"
#include "node.h"
#include "tensor.h"
#include "transfer.h"

/* Activation recomputation (autograd/checkpoint.h): which parts of a
 * model's blocks keep their intermediates for backward. */
enum ag_recompute {
	AG_RECOMPUTE_NONE,      /* keep everything */
	AG_RECOMPUTE_BLOCK,     /* keep each block's input, recompute the block */
	AG_RECOMPUTE_SELECTIVE, /* recompute attention and the MLP activation */
};

struct ag_recompute_state;

struct ag_ctx {
	struct arena *step;     /* per-step memory, on the compute device */
	struct ag_node *tape;   /* most recently recorded node */
	int64_t n_nodes;        /* nodes on the tape */
	bool grad_enabled;      /* false inside no_grad scopes */
	bool training;          /* dropout is active only when true */
	uint64_t seed;          /* dropout random stream */
	uint64_t rng_offset;    /* advances by numel at every dropout call */
	struct hug_error err;   /* sticky; see above */
	/* Called during backward as soon as a leaf's gradient is complete
	 * (after the last op that uses it), e.g. to start its data-parallel
	 * all-reduce while backward goes on; NULL: none. */
	void (*on_leaf_grad)(void *state, struct tensor *leaf);
	void *hook_state;
	/* Called by a model's forward just before block `block` runs (ZeRO-3
	 * gathers that block's parameters there); NULL: none. */
	void (*on_block)(void *state, int block);
	void *block_state;
	enum ag_recompute recompute;    /* read by the families' block loops */
	struct ag_recompute_state *rc;  /* the engine's, made on first use */
};

/* A model's forward calls this before each of its blocks. */
static inline void ag_block_hook(struct ag_ctx *ctx, int block)
{
	if (ctx->on_block)
		ctx->on_block(ctx->block_state, block);
}

/* Initialises `ctx` over step arena `step`: grad enabled, training mode,
 * seed 0. The context does not own the arena. */
void ag_ctx_init(struct ag_ctx *ctx, struct arena *step);
/* Frees what the context made for itself (recomputation's scratch arena);
 * the step arena stays the caller's. The context may be initialised again. */
void ag_ctx_free(struct ag_ctx *ctx);
/* Forgets the tape and the error and resets the step arena. Tensors made in
 * the step arena are invalid afterwards. The RNG offset is kept, so the
 * dropout masks of successive steps differ. */
void ag_ctx_reset(struct ag_ctx *ctx);
/* True once an op or backward has failed; the message is in ctx->err.msg. */
static inline bool ag_failed(const struct ag_ctx *ctx) { return ctx->err.set; }

/* Sets whether ops record on the tape; returns the previous setting, so a
 * no_grad scope is `bool g = ag_set_grad_enabled(ctx, false); ...;
 * ag_set_grad_enabled(ctx, g);`. */
bool ag_set_grad_enabled(struct ag_ctx *ctx, bool enabled);

/* Runs the tape backwards from `loss` (numel 1), seeding d loss = 1, and
 * accumulates gradients into every tensor that requires one. The tape is
 * consumed: a second backward needs a new forward. Returns 0, or -1 with
 * ctx->err set (loss NULL or not scalar, a kernel missing). */
int ag_backward(struct ag_ctx *ctx, struct tensor *loss);
/* As ag_backward, seeding the gradient of `out` with `grad_out` (same shape
 * and dtype as `out`; it is copied, not kept). */
int ag_backward_from(struct ag_ctx *ctx, struct tensor *out,
		     const struct tensor *grad_out);

/* ---- ops: each returns a new tensor in ctx->step, or NULL on error ---- */

/* Batched matrix product op(a) @ op(b), op = transpose of the last two dims
 * when trans_x is set. a (..., M, K) [or (..., K, M)], b (..., K, N) [or
 * (..., N, K)]; b's batch dims equal a's or b is 2-D (shared by every
 * batch). -> (..., M, N). */
struct tensor *ag_matmul(struct ag_ctx *ctx, struct tensor *a, struct tensor *b,
			 bool trans_a, bool trans_b);
/* x (..., in) @ w^T + bias: w (out, in), bias (out) or NULL -> (..., out). */
struct tensor *ag_linear(struct ag_ctx *ctx, struct tensor *x, struct tensor *w,
			 struct tensor *bias);
/* Element-wise a + b and a * b with broadcasting (trailing dims aligned, a
 * dim of 1 or a missing dim stretches). */
struct tensor *ag_add(struct ag_ctx *ctx, struct tensor *a, struct tensor *b);
struct tensor *ag_mul(struct ag_ctx *ctx, struct tensor *a, struct tensor *b);
/* alpha * x. */
struct tensor *ag_scale(struct ag_ctx *ctx, struct tensor *x, double alpha);
/* Sum / mean over dim `dim` (negative counts from the end; the dim is
 * removed) or over every element with AG_DIM_ALL (-> a 0-d scalar). */
struct tensor *ag_sum(struct ag_ctx *ctx, struct tensor *x, int dim);
struct tensor *ag_mean(struct ag_ctx *ctx, struct tensor *x, int dim);

/* Views share x's storage. ag_view needs a contiguous x and the same numel
 * (one dim may be -1, inferred); ag_reshape copies first when x is not
 * contiguous. */
struct tensor *ag_view(struct ag_ctx *ctx, struct tensor *x, int ndim,
		       const int64_t *shape);
struct tensor *ag_reshape(struct ag_ctx *ctx, struct tensor *x, int ndim,
			  const int64_t *shape);
/* Dim d of the result is dim perm[d] of x. */
struct tensor *ag_permute(struct ag_ctx *ctx, struct tensor *x, const int *perm);
struct tensor *ag_transpose(struct ag_ctx *ctx, struct tensor *x, int d0, int d1);
/* Elements start .. start+len-1 of dim `dim` (a view). */
struct tensor *ag_slice(struct ag_ctx *ctx, struct tensor *x, int dim,
			int64_t start, int64_t len);
/* A contiguous copy (x itself, unrecorded, when already contiguous). */
struct tensor *ag_contiguous(struct ag_ctx *ctx, struct tensor *x);
/* x converted to float dtype `dt` (f32, f64, bf16, f16); the gradient is
 * converted back. x itself when already of that dtype. */
struct tensor *ag_cast(struct ag_ctx *ctx, struct tensor *x, enum dtype dt);

/* Rows of w (V, C) picked by ids (...) i32, each in [0, V) -> (..., C). The
 * backward is deterministic. */
struct tensor *ag_embedding(struct ag_ctx *ctx, struct tensor *ids,
			    struct tensor *w);
/* Layer norm over the last dim: x (..., C), weight (C), bias (C) or NULL.
 * Row statistics are accumulated in double on every backend; the saved
 * mean and rstd are stored in x's dtype (f32 for bf16). */
struct tensor *ag_layernorm(struct ag_ctx *ctx, struct tensor *x,
			    struct tensor *weight, struct tensor *bias, double eps);
/* GeLU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
struct tensor *ag_gelu(struct ag_ctx *ctx, struct tensor *x);
/* Inverted dropout: zeroes each element with probability p and scales the
 * rest by 1/(1-p). Identity (x itself) when p == 0 or !ctx->training. The
 * mask is a pure function of (ctx->seed, offset, element index), so it is
 * reproducible and the same on every backend. */
struct tensor *ag_dropout(struct ag_ctx *ctx, struct tensor *x, double p);
/* Softmax over the last dim. */
struct tensor *ag_softmax(struct ag_ctx *ctx, struct tensor *x);

/* Where attention scores get a position bias. RoPE and other rotations are
 * applied to q and k before the op, so they need no mode here. */
enum ag_pos_bias {
	AG_POS_BIAS_NONE,  /* no bias */
	AG_POS_BIAS_ALIBI, /* slope_h * pos_j with the caller's slopes (H) */
};

/* How the attention op computes. The tiled kernel (flash-attention style:
 * blocks of query rows against tiles of keys with an online softmax) keeps
 * only the output and each row's log-sum-exp for backward, O(T) per head,
 * and recomputes the probabilities there; the exact kernel materialises and
 * saves the (B, H, Tq, Tk) probabilities. Both compute the same function
 * (parity within rounding). DEFAULT is the tiled kernel unless the
 * environment variable HUG_ATTENTION is "exact". */
enum ag_attn_kernel {
	AG_ATTN_KERNEL_DEFAULT,
	AG_ATTN_KERNEL_TILED,
	AG_ATTN_KERNEL_EXACT,
};

/* What the attention op computes besides softmax(scale q k^T) v. */
struct ag_attn_desc {
	enum ag_pos_bias pos_bias;
	struct tensor *slopes;    /* (H), q's dtype: AG_POS_BIAS_ALIBI only, else NULL */
	bool causal;              /* query i sees keys j <= Tk - Tq + i */
	int64_t window;           /* sliding window (needs causal), 0: none:
				     query i sees key j only if
				     0 <= (Tk - Tq + i) - j < window */
	struct tensor *key_mask;  /* (B, Tk) i32, 1 keep / 0 padding, or NULL */
	double dropout;           /* p in [0, 1) on the probabilities when
				     ctx->training (masks as ag_dropout's) */
	int64_t head_offset;      /* tensor parallel: global index of head 0 of q */
	int64_t n_head_total;     /* heads over all ranks (dropout masks are
				     numbered over all); 0: q's H */
	struct tensor *segments;  /* (B, Tk) i32 document ids, or NULL: query i
				     sees key j only if segments[b, Tk - Tq + i]
				     == segments[b, j] (packed documents); ALiBi
				     positions restart where the id changes */
	enum ag_attn_kernel kernel;
};

/* Fused self-attention. q (B, H, Tq, D), k and v (B, Hkv, Tk, D) with
 * Tq <= Tk and H a multiple of Hkv (query head h reads key/value head
 * h / (H / Hkv): grouped-query attention, multi-query at Hkv == 1,
 * multi-head at Hkv == H; the k and v gradients sum over each group).
 * Any strides with a unit stride on D and a stride on T of at least D
 * (views into a fused QKV buffer need no copy; other layouts are copied).
 * Scores s_ij = scale * q_i . k_j (+ slope_h * pos_j with ALiBi), scale
 * 1/sqrt(D), masked where the causal rule, the sliding window or
 * key_mask[b, j] == 0 hides key j; softmax in the tensor's float type;
 * out_i = sum_j p_ij v_j. pos_j counts the kept keys before j (j itself
 * without a key mask), so positions skip padding as Hugging Face's BLOOM
 * computes them; with segments pos_j counts the kept keys from the start
 * of j's run of equal ids (each packed document starts at 0). The window
 * counts raw key indices, padding included
 * (transformers' sliding_window_causal_mask_function on cache positions:
 * kv_idx <= q_idx and kv_idx > q_idx - sliding_window, with q_idx =
 * Tk - Tq + i); window < 0, or a window without causal, is an op error.
 * A query row whose keys are all masked gives zeros. -> (B, H, Tq, D)
 * contiguous. */
struct tensor *ag_attention(struct ag_ctx *ctx, struct tensor *q, struct tensor *k,
			    struct tensor *v, const struct ag_attn_desc *desc);
/* Whether AG_ATTN_KERNEL_DEFAULT means the tiled kernel: true unless
 * HUG_ATTENTION=exact is in the environment. */
bool ag_attention_default_tiled(void);

/* Mean cross-entropy of logits (..., V) against targets (...) i32, skipping
 * targets equal to ignore_index (Hugging Face uses -100); the mean is over
 * the counted targets (0 when none count). -> a 0-d scalar, in f32 for
 * bf16 logits (the loss of mixed precision), else in the logits' dtype. */
struct tensor *ag_cross_entropy(struct ag_ctx *ctx, struct tensor *logits,
				struct tensor *targets, int32_t ignore_index);

/* ---- the layers of the Llama families (Llama, Qwen2, Qwen3, Mistral) ---- */

/* RMSNorm over the last dim: y = x / sqrt(mean(x^2) + eps) * w, eps > 0.
 * x (..., C) of any float dtype the device computes in, any strides (a
 * strided x is copied to a contiguous one first, recorded); w (C) of x's
 * dtype, or NULL for no weight. The sum of squares accumulates in double
 * on every backend; the saved 1/rms (rows) is in x's dtype (f32 for bf16).
 * bf16: the normalised value is rounded to bf16, then multiplied by w
 * (transformers' LlamaRMSNorm: weight * hidden.to(input_dtype)).
 * -> (..., C) contiguous. Gradients for x and w (the bf16 rounding of the
 * normalised value counts as the identity). */
struct tensor *ag_rmsnorm(struct ag_ctx *ctx, struct tensor *x, struct tensor *w, double eps);
/* Rotary position embedding, Hugging Face's rotate_half convention: with
 * D2 = D/2, for i < D2 the pair (x[i], x[i+D2]) is rotated by the angle
 * a_i = pos[b,t] * inv_freq[i]:
 *   y[i] = x[i] cos a_i - x[i+D2] sin a_i ;  y[i+D2] = x[i+D2] cos a_i + x[i] sin a_i.
 * x (B, H, T, D), D even, with any strides that have a unit stride on D
 * (views into a fused or projected buffer need no copy; other layouts are
 * copied); pos (B, T) i32 position ids (the caller's: they follow padding
 * and packed documents); inv_freq (D/2) DT_F64 always (rope scaling is the
 * caller's). Angles, cos and sin in f64 for f64 x; in f32 for f32 and bf16
 * x, from inv_freq rounded to f32 and the position as an f32, as
 * transformers computes them. -> (B, H, T, D) contiguous. Gradient for x
 * only (the rotation by -a). */
struct tensor *ag_rope(struct ag_ctx *ctx, struct tensor *x, struct tensor *pos,
		       struct tensor *inv_freq);
/* SiLU: y = x * sigmoid(x), elementwise. -> contiguous, x's shape. */
struct tensor *ag_silu(struct ag_ctx *ctx, struct tensor *x);
/* The gated MLP activation (SwiGLU), fused: y = silu(gate) * up, gate and
 * up of the same shape and dtype (any strides: copied when not
 * contiguous). bf16: silu(gate) is rounded to bf16 before the product, as
 * transformers' act_fn(gate_proj(x)) * up_proj(x) does. -> contiguous.
 * Gradients for both. */
struct tensor *ag_swiglu(struct ag_ctx *ctx, struct tensor *gate, struct tensor *up);

/* ---- tensor parallelism (Megatron) ---- */

/* As ag_embedding, for the rows [vocab_offset, vocab_offset + rows) of a
 * vocabulary of vocab_total held by this rank: ids outside the slice give
 * zero rows (and no gradient); summing over the group with ag_tp_reduce
 * completes the lookup. */
struct tensor *ag_embedding_shard(struct ag_ctx *ctx, struct tensor *ids,
				  struct tensor *w, int64_t vocab_offset,
				  int64_t vocab_total);
/* As ag_cross_entropy over logits (..., Vr) holding the slice
 * [vocab_offset, vocab_offset + Vr) of a vocabulary of vocab_total on each
 * rank of `coll` (the slices of the group cover the vocabulary):
 * the row maximum, the sum of exponentials and the target logit are reduced
 * over the group, so every rank gets the loss of the whole vocabulary.
 * coll NULL or of size 1: exactly ag_cross_entropy. */
struct tensor *ag_cross_entropy_shard(struct ag_ctx *ctx, struct tensor *logits,
				      struct tensor *targets, int32_t ignore_index,
				      int64_t vocab_offset, int64_t vocab_total,
				      const struct ag_collective *coll);
/* Megatron's f: identity forward, all-reduce of the gradient backward
 * (before a column-parallel layer). x itself when the group has one rank. */
struct tensor *ag_tp_copy(struct ag_ctx *ctx, struct tensor *x,
			  const struct ag_collective *coll);
/* Megatron's g: all-reduce forward, identity backward (after a
 * row-parallel layer). */
struct tensor *ag_tp_reduce(struct ag_ctx *ctx, struct tensor *x,
			    const struct ag_collective *coll);

#endif
