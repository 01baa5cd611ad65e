/* checkpoint.h: activation recomputation. A region is a function of some
 * tensors that runs in forward without keeping its intermediates (they
 * live in a scratch arena that is reset when the region ends; only its
 * output is copied to the step arena) and is run again inside backward to
 * build a local tape, whose backward then runs at once. The tape records
 * the region as one node (AG_OP_CHECKPOINT), so backward, the data-parallel
 * leaf hook and every backend see it as an op like another.
 *
 * The recomputation replays the forward exactly: the same kernels on the
 * same inputs with the dropout stream (seed, offset, training flag) set
 * back to the region's start, so gradients are bit-identical to those of
 * the same code run without a region (on a backend whose kernels are
 * deterministic: both of hug's).
 *
 * A model uses it from its block loop (nn/bloom.c, nn/llama.c):
 *
 *   x = ag_recompute_if(ctx, AG_RECOMPUTE_BLOCK, block_fn, &args, sizeof(args), 1, &x);
 *
 * and inside a block, ag_attention_rc for the attention and one more
 * ag_recompute_if(ctx, AG_RECOMPUTE_SELECTIVE, ...) around the MLP's
 * activation and the projection that reads it. */
#ifndef HUG_AUTOGRAD_CHECKPOINT_H
#define HUG_AUTOGRAD_CHECKPOINT_H

#include <stddef.h>

#include "autograd.h"

/* The body of a region: reads in[0 .. n_in) and whatever its state names,
 * records ops on ctx and returns the output (NULL on error, with ctx->err).
 * It runs twice with the same state and inputs, so it must compute the
 * same thing both times: no side effects outside ctx. Tensors it reads
 * through `state` must outlive backward (parameters, or tensors of the step
 * arena made before the region); those of an earlier region's scratch do
 * not. */
typedef struct tensor *(*ag_region_fn)(struct ag_ctx *ctx, const void *state,
					struct tensor *const *in);

/* Runs fn(ctx, state, in) as a recomputation region and returns its output,
 * a contiguous copy in ctx->step (or NULL with ctx->err set). `state`
 * (state_size bytes) is copied, so it may live on the caller's stack;
 * n_in <= AG_MAX_INPUTS. With grad mode off, or inside another region
 * (regions do not nest), it is fn(ctx, state, in) itself. Memory: the
 * intermediates of one region at a time, twice over in backward (values
 * and their gradients), in the context's scratch arena (made on first use
 * on the step arena's device, freed by ag_ctx_free). */
struct tensor *ag_checkpoint(struct ag_ctx *ctx, ag_region_fn fn, const void *state,
			     size_t state_size, int n_in, struct tensor *const *in);

/* ag_checkpoint when ctx->recompute == mode, else fn(ctx, state, in). */
struct tensor *ag_recompute_if(struct ag_ctx *ctx, enum ag_recompute mode,
			       ag_region_fn fn, const void *state, size_t state_size,
			       int n_in, struct tensor *const *in);

/* ag_attention (q (B, H, Tq, D), k and v (B, Hkv, Tk, D) -> (B, H, Tq, D)),
 * as a region under AG_RECOMPUTE_SELECTIVE: the probabilities (B, H, Tq, Tk)
 * are not kept but recomputed in backward. desc's tensors (slopes, key
 * mask) must outlive backward. */
struct tensor *ag_attention_rc(struct ag_ctx *ctx, struct tensor *q, struct tensor *k,
			       struct tensor *v, const struct ag_attn_desc *desc);

/* The most bytes the scratch arena of ctx's regions has held at once (0
 * before the first region): what recomputation adds to a step's memory,
 * besides the step arena's own high-water mark. */
size_t ag_recompute_scratch_peak(const struct ag_ctx *ctx);

#endif
