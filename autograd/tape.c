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

/* Gives every input of `n` that takes part in the gradient, but `skip`
 * (may be NULL), a zeroed grad buffer (leaves have theirs already). */
static void ensure_input_grads(struct ag_ctx *ctx, struct ag_node *n, const struct tensor *skip)
{
	for (int i = 0; i < node_n_args(n); i++) {
		struct tensor *t = node_arg(n, i);
		if (t && t->requires_grad && t != skip)
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

static bool is_layout_view(enum ag_op op)
{
	return op == AG_OP_VIEW || op == AG_OP_PERMUTE || op == AG_OP_SLICE;
}

/* Node n scatters a contiguous gradient g along the strides of a view v:
 * permute and slice (v: their output), contiguous (v: its input). When v's
 * input is itself a view (v = permute(slice(qkv)) in BLOOM's attention)
 * whose gradient no other op has begun, the intermediate gradient buffers
 * are skipped: g goes straight into the gradient of the chain's contiguous
 * root, at v's own strides and offset, through the permute kernel's
 * contiguous-input case (autograd/cpu/layout.c). Returns false (nothing
 * done) otherwise. Each root element receives the same single addition
 * the chain would have made, so the bits do not change. */
static bool scatter_to_view_root(struct ag_ctx *ctx, const struct ag_backend *be,
				 struct ag_node *n)
{
	if (n->op != AG_OP_PERMUTE && n->op != AG_OP_SLICE && n->op != AG_OP_CONTIGUOUS)
		return false;
	struct tensor *v = n->op == AG_OP_CONTIGUOUS ? n->in[0] : n->out;
	struct tensor *r = n->op == AG_OP_CONTIGUOUS ? v : n->in[0];
	if (!r->node || !is_layout_view(r->node->op) || r->grad)
		return false;
	while (!r->grad && r->node && is_layout_view(r->node->op) &&
	       r->node->in[0]->requires_grad)
		r = r->node->in[0];
	if (!tensor_is_contiguous(r) || r->dtype != v->dtype)
		return false;
	struct tensor view = *v;
	view.grad = n->out->grad;
	struct ag_node tmp = *n;
	tmp.op = AG_OP_PERMUTE;
	tmp.n_in = 1;
	tmp.in[0] = r;
	tmp.out = &view;
	grad_buffer(ctx, r);
	be->op[AG_OP_PERMUTE].backward(&tmp);
	return true;
}

/* An add's output gradient is final when the add's backward runs (its
 * consumers come later on the tape, so they ran first), and an input of the
 * same shape receives exactly that gradient. So the first such input with
 * no gradient buffer yet takes the output's buffer as its own instead of a
 * zeroed copy of it (the kernel skips an input without a buffer); later
 * uses add into it as usual. 0 + g is g: the bits do not change. Returns
 * the input given the buffer, or NULL. */
static struct tensor *add_pass_through(struct ag_node *n)
{
	if (n->op != AG_OP_ADD || n->in[0] == n->in[1])
		return NULL;
	for (int i = 0; i < 2; i++) {
		struct tensor *x = n->in[i];
		if (x->requires_grad && !x->grad && x->node && x->dtype == n->out->dtype &&
		    tensor_same_shape(x, n->out))
			return x;
	}
	return NULL;
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
		double t0 = ag_profile_start(be->device);
		struct tensor *pass = add_pass_through(n);
		if (!scatter_to_view_root(ctx, be, n)) {
			ensure_input_grads(ctx, n, pass);
			fn(n);
			if (pass)
				pass->grad = n->out->grad;
		}
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
