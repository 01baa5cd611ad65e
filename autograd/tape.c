/* tape.c: the autograd context and reverse-mode backward over the tape. */
#include "autograd.h"

#include <string.h>

#include "backend.h"
#include "profile.h"
#include "tape_internal.h"

void ag_ctx_init(struct ag_ctx *ctx, struct arena *step)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->step = step;
	ctx->grad_enabled = true;
	ctx->training = true;
}

void ag_ctx_free(struct ag_ctx *ctx)
{
	ag_recompute_free(ctx);
}

void ag_ctx_reset(struct ag_ctx *ctx)
{
	if (ctx->rc) { /* empty unless a region stopped half-way */
		arena_reset(&ctx->rc->scratch);
		ctx->rc->inside = false;
	}
	ctx->tape = NULL;
	ctx->n_nodes = 0;
	hug_error_clear(&ctx->err);
	arena_reset(ctx->step);
}

bool ag_set_grad_enabled(struct ag_ctx *ctx, bool enabled)
{
	bool prev = ctx->grad_enabled;
	ctx->grad_enabled = enabled;
	return prev;
}

/* The gradient buffer of t, made on first use: zeros; or, for the output
 * of a view (AG_OP_VIEW: its contiguous input's elements in the same order,
 * in another shape), the input's own gradient buffer seen in t's shape, so
 * that t's consumers accumulate straight into the input's gradient and the
 * view's backward has nothing to move (run_backward skips it). Either way
 * the buffer is contiguous with t's shape. */
static struct tensor *grad_buffer(struct ag_ctx *ctx, struct tensor *t)
{
	if (t->grad)
		return t->grad;
	const struct ag_node *v = t->node;
	if (!v || v->op != AG_OP_VIEW || !v->in[0]->requires_grad) {
		t->grad = tensor_zeros(ctx->step, t->dtype, t->ndim, t->shape);
		return t->grad;
	}
	const struct tensor *base = grad_buffer(ctx, v->in[0]);
	struct tensor *g = arena_alloc_meta(ctx->step, sizeof(*g));
	memset(g, 0, sizeof(*g));
	g->dtype = base->dtype;
	g->device = base->device;
	g->data = base->data;
	g->ndim = t->ndim;
	memcpy(g->shape, t->shape, sizeof(g->shape));
	tensor_contiguous_strides(t->ndim, g->shape, g->stride);
	t->grad = g;
	return g;
}

/* True when node n is a view whose output's gradient is its input's
 * (grad_buffer): backward has nothing to move. */
static bool grad_shared_with_input(const struct ag_node *n)
{
	return n->op == AG_OP_VIEW && n->in[0]->grad && n->out->grad &&
	       n->out->grad->data == n->in[0]->grad->data && tensor_numel(n->out) > 0;
}

/* The tensors node n reads, as far as gradients go: its inputs, or for a
 * recomputation region every tensor from outside it that needs a gradient
 * (autograd/checkpoint.c). */
static int node_n_args(const struct ag_node *n)
{
	return n->op == AG_OP_CHECKPOINT ? n->p.checkpoint.region->n_outer : n->n_in;
}

static struct tensor *node_arg(const struct ag_node *n, int i)
{
	return n->op == AG_OP_CHECKPOINT ? n->p.checkpoint.region->outer[i] : n->in[i];
}

/* Gives every input of `n` that takes part in the gradient a zeroed grad
 * buffer (leaves have theirs already). */
static void ensure_input_grads(struct ag_ctx *ctx, struct ag_node *n)
{
	for (int i = 0; i < node_n_args(n); i++) {
		struct tensor *t = node_arg(n, i);
		if (t && t->requires_grad)
			grad_buffer(ctx, t);
	}
}

static bool is_grad_leaf(const struct tensor *t)
{
	return t && !t->node && t->requires_grad;
}

/* Counts, for every leaf that needs a gradient, the ops that use it. */
static void count_leaf_uses(struct ag_node *tape, int delta)
{
	for (struct ag_node *n = tape; n; n = n->prev)
		for (int i = 0; i < node_n_args(n); i++) {
			struct tensor *t = node_arg(n, i);
			if (is_grad_leaf(t))
				t->pending = delta ? t->pending + delta : 0;
		}
}

/* After node n's backward: leaves whose last use this was are complete. */
static void leaves_done(struct ag_ctx *ctx, struct ag_node *n)
{
	for (int i = 0; i < node_n_args(n); i++) {
		struct tensor *t = node_arg(n, i);
		if (is_grad_leaf(t) && t->pending > 0 && --t->pending == 0)
			ctx->on_leaf_grad(ctx->hook_state, t);
	}
}

/* Leaves no gradient flowed into (unused by this loss) are complete too. */
static void leaves_flush(struct ag_ctx *ctx, struct ag_node *tape)
{
	for (struct ag_node *n = tape; n; n = n->prev)
		for (int i = 0; i < node_n_args(n); i++) {
			struct tensor *t = node_arg(n, i);
			if (is_grad_leaf(t) && t->pending > 0) {
				t->pending = 0;
				ctx->on_leaf_grad(ctx->hook_state, t);
			}
		}
}

int ag_tape_run(struct ag_ctx *ctx, struct ag_node *tape, bool hooks)
{
	const struct ag_backend *be = ag_backend_get(ctx->step->allocator->device);
	hooks = hooks && ctx->on_leaf_grad;
	if (hooks) {
		count_leaf_uses(tape, 0);
		count_leaf_uses(tape, 1);
	}
	for (struct ag_node *n = tape; n; n = n->prev) {
		if (!n->out->grad || grad_shared_with_input(n)) {
			if (hooks)
				leaves_done(ctx, n);
			continue; /* nothing flowed into this op's output, or it
				   * flowed straight into its input's gradient */
		}
		ag_kernel_fn fn = be ? be->op[n->op].backward : NULL;
		if (!fn)
			return hug_error_set(&ctx->err,
					     "backward: %s has no backward kernel on %s",
					     ag_op_info[n->op].name,
					     device_name(ctx->step->allocator->device));
		ensure_input_grads(ctx, n);
		double t0 = ag_profile_start(be->device);
		fn(n);
		ag_profile_stop_op(n->op, true, be->device, t0);
		if (ctx->err.set) /* a recomputation region failed */
			return -1;
		if (hooks)
			leaves_done(ctx, n);
	}
	if (hooks)
		leaves_flush(ctx, tape);
	return 0;
}

static int run_backward(struct ag_ctx *ctx)
{
	if (ag_tape_run(ctx, ctx->tape, true))
		return -1;
	ctx->tape = NULL;
	ctx->n_nodes = 0;
	return 0;
}

/* Checks that `out` can seed a backward pass; returns -1 with ctx->err. */
static int check_root(struct ag_ctx *ctx, struct tensor *out, const char *what)
{
	if (ctx->err.set)
		return -1;
	if (!out)
		return hug_error_set(&ctx->err, "backward: %s is NULL", what);
	if (!out->requires_grad || !out->node)
		return hug_error_set(&ctx->err,
				     "backward: %s does not require grad (no input of "
				     "it requires grad, or it was made under no_grad)",
				     what);
	return 0;
}

int ag_backward(struct ag_ctx *ctx, struct tensor *loss)
{
	char d[64];
	if (check_root(ctx, loss, "loss"))
		return -1;
	if (tensor_numel(loss) != 1)
		return hug_error_set(&ctx->err,
				     "backward: loss must have one element, got %s",
				     tensor_describe(loss, d, sizeof(d)));
	struct tensor *one = tensor_new_like(ctx->step, loss);
	ag_backend_get(loss->device)->fill(one, 1.0);
	return ag_backward_from(ctx, loss, one);
}

int ag_backward_from(struct ag_ctx *ctx, struct tensor *out,
		     const struct tensor *grad_out)
{
	char d0[64], d1[64];
	if (check_root(ctx, out, "output"))
		return -1;
	if (!grad_out || !tensor_same_shape(out, grad_out) ||
	    out->dtype != grad_out->dtype || out->device != grad_out->device ||
	    !tensor_is_contiguous(grad_out))
		return hug_error_set(&ctx->err,
				     "backward: gradient %s must be contiguous and match output %s",
				     grad_out ? tensor_describe(grad_out, d0, sizeof(d0)) : "NULL",
				     tensor_describe(out, d1, sizeof(d1)));
	const struct ag_backend *be = ag_backend_get(out->device);
	if (!out->grad)
		out->grad = tensor_zeros(ctx->step, out->dtype, out->ndim, out->shape);
	be->accumulate(out->grad, grad_out);
	return run_backward(ctx);
}
