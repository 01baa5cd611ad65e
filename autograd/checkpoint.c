/* checkpoint.c: recomputation regions (checkpoint.h): a forward that keeps
 * nothing but its output, the region's node on the tape, and its backward,
 * which runs the region again over a local tape in the scratch arena and
 * runs that tape's backward at once. */
#include "checkpoint.h"

#include <string.h>

#include "../base/alloc.h"
#include "backend.h"
#include "tape_internal.h"

static struct ag_recompute_state *rc_get(struct ag_ctx *ctx)
{
	if (!ctx->rc) {
		ctx->rc = hug_calloc(1, sizeof(*ctx->rc));
		arena_init(&ctx->rc->scratch, "recompute", 0, ctx->step->allocator);
	}
	return ctx->rc;
}

void ag_recompute_free(struct ag_ctx *ctx)
{
	if (!ctx->rc)
		return;
	arena_free(&ctx->rc->scratch);
	hug_free(ctx->rc);
	ctx->rc = NULL;
}

size_t ag_recompute_scratch_peak(const struct ag_ctx *ctx)
{
	return ctx->rc ? ctx->rc->scratch.high_water : 0;
}

/* What a region changes in the context while it runs. */
struct ctx_outside {
	struct arena *step;
	struct ag_node *tape;
	int64_t n_nodes;
	uint64_t seed, rng_offset;
	bool training, grad_enabled;
};

/* Points ctx at the scratch arena and an empty tape. */
static void enter(struct ag_ctx *ctx, struct ctx_outside *o)
{
	*o = (struct ctx_outside){ ctx->step, ctx->tape, ctx->n_nodes, ctx->seed,
				   ctx->rng_offset, ctx->training, ctx->grad_enabled };
	ctx->step = &ctx->rc->scratch;
	ctx->tape = NULL;
	ctx->n_nodes = 0;
	ctx->rc->inside = true;
}

/* Undoes enter; the dropout stream too when `stream` (backward: the
 * recomputation replayed draws that forward has already counted). */
static void leave(struct ag_ctx *ctx, const struct ctx_outside *o, bool stream)
{
	ctx->step = o->step;
	ctx->tape = o->tape;
	ctx->n_nodes = o->n_nodes;
	ctx->grad_enabled = o->grad_enabled;
	if (stream) {
		ctx->seed = o->seed;
		ctx->rng_offset = o->rng_offset;
		ctx->training = o->training;
	}
	ctx->rc->inside = false;
}

/* True for a tensor the region reads from outside that needs a gradient. */
static bool is_outer(const struct ag_ctx *ctx, const struct tensor *t)
{
	return t && t->requires_grad && !arena_holds(&ctx->rc->scratch, t);
}

/* Fills r->outer (in `main`) from the local tape: each outer tensor once,
 * in the order backward meets them. */
static void collect_outer(const struct ag_ctx *ctx, struct ag_region *r,
			  const struct ag_node *tape, struct arena *main)
{
	int cap = 0;
	for (const struct ag_node *n = tape; n; n = n->prev)
		cap += n->n_in;
	r->outer = arena_alloc_meta(main, (size_t)(cap ? cap : 1) * sizeof(*r->outer));
	r->n_outer = 0;
	for (const struct ag_node *n = tape; n; n = n->prev)
		for (int i = 0; i < n->n_in; i++) {
			struct tensor *t = n->in[i];
			if (!is_outer(ctx, t))
				continue;
			int j = 0;
			while (j < r->n_outer && r->outer[j] != t)
				j++;
			if (j == r->n_outer)
				r->outer[r->n_outer++] = t;
		}
}

/* Records the region's node, with output `out`, on ctx's tape. */
static void record(struct ag_ctx *ctx, struct ag_region *r, struct tensor *out)
{
	struct ag_node *n = arena_alloc_meta(ctx->step, sizeof(*n));
	memset(n, 0, sizeof(*n));
	n->op = AG_OP_CHECKPOINT;
	n->out = out;
	n->p.checkpoint.region = r;
	out->requires_grad = true;
	out->node = n;
	n->prev = ctx->tape;
	ctx->tape = n;
	ctx->n_nodes++;
}

struct tensor *ag_checkpoint(struct ag_ctx *ctx, ag_region_fn fn, const void *state,
			     size_t state_size, int n_in, struct tensor *const *in)
{
	if (ctx->err.set)
		return NULL;
	if (n_in < 0 || n_in > AG_MAX_INPUTS) {
		hug_error_set(&ctx->err, "checkpoint: %d inputs, expected 0 to %d", n_in,
			      AG_MAX_INPUTS);
		return NULL;
	}
	if (!ctx->grad_enabled || (ctx->rc && ctx->rc->inside))
		return fn(ctx, state, in);
	struct ag_recompute_state *rc = rc_get(ctx);
	struct arena *main = ctx->step;
	struct ag_region *r = arena_alloc_meta(main, sizeof(*r));
	memset(r, 0, sizeof(*r));
	void *st = arena_alloc_meta(main, state_size ? state_size : 1);
	if (state_size)
		memcpy(st, state, state_size);
	*r = (struct ag_region){ .ctx = ctx, .fn = fn, .state = st, .n_in = n_in,
				 .seed = ctx->seed, .rng_offset = ctx->rng_offset,
				 .training = ctx->training };
	for (int i = 0; i < n_in; i++)
		r->in[i] = in[i];

	struct ctx_outside o;
	enter(ctx, &o);
	struct tensor *lo = fn(ctx, st, r->in);   /* the region's output, local */
	struct ag_node *local = ctx->tape;
	leave(ctx, &o, false);
	struct tensor *out = NULL;
	if (!lo && !ctx->err.set)
		hug_error_set(&ctx->err, "checkpoint: the region returned NULL");
	if (ctx->err.set) {
		/* nothing */
	} else if (!arena_holds(&rc->scratch, lo)) {
		out = lo; /* a tensor from outside (an input passed through) */
	} else {
		out = tensor_new(main, lo->dtype, lo->ndim, lo->shape);
		ag_backend_get(main->allocator->device)->copy(out, lo);
		collect_outer(ctx, r, local, main);
		if (local && r->n_outer > 0)
			record(ctx, r, out);
	}
	arena_reset(&rc->scratch);
	return out;
}

/* The region's backward: run it again (same inputs, same dropout stream)
 * recording a local tape, seed its output with the node's gradient and run
 * the local backward. The outer tensors already have their gradient
 * buffers (the tape's ensure_input_grads), so every buffer made here is
 * the region's own and dies with the scratch arena. */
void ag_checkpoint_backward(struct ag_node *n)
{
	struct ag_region *r = n->p.checkpoint.region;
	struct ag_ctx *ctx = r->ctx;
	struct ag_recompute_state *rc = ctx->rc;
	struct ctx_outside o;
	enter(ctx, &o);
	ctx->seed = r->seed;
	ctx->rng_offset = r->rng_offset;
	ctx->training = r->training;
	ctx->grad_enabled = true;
	struct tensor *lo = r->fn(ctx, r->state, r->in);
	if (!ctx->err.set && (!lo || !lo->node || !arena_holds(&rc->scratch, lo) ||
			      !tensor_same_shape(lo, n->out) || lo->dtype != n->out->dtype))
		hug_error_set(&ctx->err, "checkpoint: the recomputed region differs from "
			      "its forward (a region must compute the same thing twice)");
	if (!ctx->err.set) {
		lo->grad = n->out->grad;
		ag_tape_run(ctx, ctx->tape, false);
	}
	leave(ctx, &o, true);
	arena_reset(&rc->scratch);
}

struct tensor *ag_recompute_if(struct ag_ctx *ctx, enum ag_recompute mode,
			       ag_region_fn fn, const void *state, size_t state_size,
			       int n_in, struct tensor *const *in)
{
	if (ctx->recompute != mode)
		return ctx->err.set ? NULL : fn(ctx, state, in);
	return ag_checkpoint(ctx, fn, state, state_size, n_in, in);
}

static struct tensor *attention_region(struct ag_ctx *ctx, const void *state,
				       struct tensor *const *in)
{
	return ag_attention(ctx, in[0], in[1], in[2], state);
}

struct tensor *ag_attention_rc(struct ag_ctx *ctx, struct tensor *q, struct tensor *k,
			       struct tensor *v, const struct ag_attn_desc *desc)
{
	struct tensor *in[] = { q, k, v };
	return ag_recompute_if(ctx, AG_RECOMPUTE_SELECTIVE, attention_region, desc,
			       sizeof(*desc), 3, in);
}
