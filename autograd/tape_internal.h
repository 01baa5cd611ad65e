/* tape_internal.h: what the tape (tape.c) and recomputation regions
 * (checkpoint.c) share inside the engine; nothing outside autograd/
 * includes it. */
#ifndef HUG_AUTOGRAD_TAPE_INTERNAL_H
#define HUG_AUTOGRAD_TAPE_INTERNAL_H

#include "checkpoint.h"

/* A recorded region (the parameters of an AG_OP_CHECKPOINT node), in the
 * step arena. */
struct ag_region {
	struct ag_ctx *ctx;
	ag_region_fn fn;
	const void *state;               /* the caller's state, copied */
	int n_in;
	struct tensor *in[AG_MAX_INPUTS];
	/* every tensor from outside the region that an op inside it reads and
	 * that requires a gradient (parameters, the inputs, a cast weight...),
	 * each once: backward gives them gradient buffers in the step arena,
	 * and they are the node's inputs for the leaf hook */
	int n_outer;
	struct tensor **outer;
	uint64_t seed, rng_offset;       /* the dropout stream at the start */
	bool training;
};

/* The engine's own recomputation state (ctx->rc). */
struct ag_recompute_state {
	struct arena scratch;  /* one region's intermediates, reset after it */
	bool inside;           /* a region is running (forward or backward) */
};

/* Runs backward over `tape` (newest first) as ag_backward does over
 * ctx->tape, after the output gradients are seeded; the leaf hook fires
 * only when `hooks`. Returns 0, or -1 with ctx->err set. */
int ag_tape_run(struct ag_ctx *ctx, struct ag_node *tape, bool hooks);

/* Frees ctx->rc (ag_ctx_free). */
void ag_recompute_free(struct ag_ctx *ctx);

#endif
