/* ops.c: the op layer. Each op validates its inputs (naming the op and the
 * shapes on error), allocates its output and saved tensors in the step
 * arena, runs the backend's forward kernel and, when a gradient is wanted,
 * records the node on the tape. Views set up metadata only. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "backend.h"
#include "profile.h"

#define DESC 80 /* room for "[a, b, c, d] bf16" */

/* Records "<op>: <message>" as the context's error; returns NULL. */
__attribute__((format(printf, 3, 4)))
static struct tensor *op_fail(struct ag_ctx *ctx, enum ag_op op, const char *fmt, ...)
{
	char msg[HUG_ERROR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hug_error_set(&ctx->err, "%s: %s", ag_op_info[op].name, msg);
	return NULL;
}

static const char *desc(const struct tensor *t, char *buf)
{
	return t ? tensor_describe(t, buf, DESC) : "NULL";
}

static enum device ctx_device(const struct ag_ctx *ctx)
{
	return ctx->step->allocator->device;
}

/* Common checks: no earlier error, the required inputs present, all inputs
 * on the context's device. `names` labels inputs for messages; inputs
 * whose bit is set in `optional` may be NULL. */
static bool op_begin(struct ag_ctx *ctx, enum ag_op op, int n,
		     struct tensor *const *in, const char *const *names,
		     unsigned optional)
{
	if (ctx->err.set)
		return false;
	for (int i = 0; i < n; i++) {
		if (!in[i]) {
			if (optional & (1u << i))
				continue;
			op_fail(ctx, op, "input %s is NULL", names[i]);
			return false;
		}
		if (in[i]->device != ctx_device(ctx)) {
			op_fail(ctx, op, "input %s is on %s but the context computes on %s",
				names[i], device_name(in[i]->device),
				device_name(ctx_device(ctx)));
			return false;
		}
	}
	return true;
}

/* Requires a float dtype the context's device computes in: f32 or f64 on
 * the CPU, f32 or bf16 on CUDA (no f64 kernels there). */
static bool need_math_dtype(struct ag_ctx *ctx, enum ag_op op, const char *name,
			    const struct tensor *t)
{
	char d[DESC];
	bool cuda = ctx_device(ctx) == DEV_CUDA;
	if (t->dtype == DT_F32 || t->dtype == (cuda ? DT_BF16 : DT_F64))
		return true;
	if (cuda)
		op_fail(ctx, op, "%s must be f32 or bf16 on cuda (f64 is not supported "
			"there), got %s", name, desc(t, d));
	else
		op_fail(ctx, op, "%s must be f32 or f64, got %s", name, desc(t, d));
	return false;
}

/* The dtype of saved row statistics (LayerNorm mean and rstd, log-sum-exp):
 * the input's, but f32 for bf16 inputs. */
static enum dtype stat_dtype(enum dtype dt)
{
	return dt == DT_BF16 ? DT_F32 : dt;
}

static bool same_dtype(struct ag_ctx *ctx, enum ag_op op, const char *na,
		       const struct tensor *a, const char *nb,
		       const struct tensor *b)
{
	char d0[DESC], d1[DESC];
	if (a->dtype == b->dtype)
		return true;
	op_fail(ctx, op, "dtypes differ: %s is %s, %s is %s", na, desc(a, d0),
		nb, desc(b, d1));
	return false;
}

static bool need_i32(struct ag_ctx *ctx, enum ag_op op, const char *name,
		     const struct tensor *t)
{
	char d[DESC];
	if (t->dtype == DT_I32)
		return true;
	op_fail(ctx, op, "%s must be i32, got %s", name, desc(t, d));
	return false;
}

static struct ag_node *node_new(struct ag_ctx *ctx, enum ag_op op, int n,
				struct tensor *const *in)
{
	struct ag_node *node = arena_alloc_meta(ctx->step, sizeof(*node));
	memset(node, 0, sizeof(*node));
	node->op = op;
	node->n_in = n;
	for (int i = 0; i < n; i++)
		node->in[i] = in[i];
	return node;
}

static bool wants_grad(const struct ag_ctx *ctx, const struct ag_node *n)
{
	if (!ctx->grad_enabled)
		return false;
	for (int i = 0; i < n->n_in; i++)
		if (n->in[i] && n->in[i]->requires_grad)
			return true;
	return false;
}

/* Runs the forward kernel (none for views) and records the node when a
 * gradient is wanted. Returns n->out, or NULL on error. */
static struct tensor *op_finish(struct ag_ctx *ctx, struct ag_node *n)
{
	if (!ag_op_info[n->op].is_view) {
		const struct ag_backend *be = ag_backend_get(ctx_device(ctx));
		if (!be || !be->op[n->op].forward)
			return op_fail(ctx, n->op, "not supported on %s",
				       device_name(ctx_device(ctx)));
		int64_t ns = be->scratch_numel ? be->scratch_numel(n) : 0;
		if (ns > 0)
			n->scratch = tensor_new(ctx->step, n->out->dtype, 1, &ns);
		double t0 = ag_profile_start(ctx_device(ctx));
		be->op[n->op].forward(n);
		ag_profile_stop_op(n->op, false, ctx_device(ctx), t0);
	}
	if (wants_grad(ctx, n)) {
		n->out->requires_grad = true;
		n->out->node = n;
		n->prev = ctx->tape;
		ctx->tape = n;
		ctx->n_nodes++;
	}
	return n->out;
}

/* x itself when contiguous, else a recorded contiguous copy. */
static struct tensor *contig(struct ag_ctx *ctx, struct tensor *x)
{
	return tensor_is_contiguous(x) ? x : ag_contiguous(ctx, x);
}

static int norm_dim(int dim, int ndim)
{
	return dim < 0 ? dim + ndim : dim;
}

/* ---------------------------------------------------------------- matmul */

struct tensor *ag_matmul(struct ag_ctx *ctx, struct tensor *a, struct tensor *b,
			 bool trans_a, bool trans_b)
{
	const enum ag_op op = AG_OP_MATMUL;
	struct tensor *in[] = { a, b };
	char d0[DESC], d1[DESC];
	if (!op_begin(ctx, op, 2, in, (const char *[]){ "a", "b" }, 0) ||
	    !need_math_dtype(ctx, op, "a", a) || !same_dtype(ctx, op, "a", a, "b", b))
		return NULL;
	if (a->ndim < 2 || b->ndim < 2)
		return op_fail(ctx, op, "operands need at least 2 dims: a is %s, b is %s",
			       desc(a, d0), desc(b, d1));
	int na = a->ndim, nb = b->ndim;
	int64_t m = trans_a ? a->shape[na - 1] : a->shape[na - 2];
	int64_t ka = trans_a ? a->shape[na - 2] : a->shape[na - 1];
	int64_t kb = trans_b ? b->shape[nb - 1] : b->shape[nb - 2];
	int64_t nn = trans_b ? b->shape[nb - 2] : b->shape[nb - 1];
	if (ka != kb)
		return op_fail(ctx, op, "inner dims differ (%lld vs %lld): a is %s%s, b is %s%s",
			       (long long)ka, (long long)kb, desc(a, d0),
			       trans_a ? " (transposed)" : "", desc(b, d1),
			       trans_b ? " (transposed)" : "");
	if (nb != 2) {
		bool ok = nb == na;
		for (int d = 0; ok && d < na - 2; d++)
			ok = a->shape[d] == b->shape[d];
		if (!ok)
			return op_fail(ctx, op, "batch dims differ: a is %s, b is %s "
				       "(b must have a's batch dims or be 2-D)",
				       desc(a, d0), desc(b, d1));
	}
	a = contig(ctx, a);
	b = contig(ctx, b);
	if (!a || !b)
		return NULL;
	int64_t shape[TENSOR_MAX_DIMS];
	memcpy(shape, a->shape, sizeof(shape));
	shape[na - 2] = m;
	shape[na - 1] = nn;
	struct ag_node *n = node_new(ctx, op, 2, (struct tensor *[]){ a, b });
	n->p.matmul.trans_a = trans_a;
	n->p.matmul.trans_b = trans_b;
	n->out = tensor_new(ctx->step, a->dtype, na, shape);
	return op_finish(ctx, n);
}

struct tensor *ag_linear(struct ag_ctx *ctx, struct tensor *x, struct tensor *w,
			 struct tensor *bias)
{
	const enum ag_op op = AG_OP_LINEAR;
	struct tensor *in[] = { x, w, bias };
	char d0[DESC], d1[DESC];
	if (!op_begin(ctx, op, 3, in, (const char *[]){ "x", "weight", "bias" }, 4u) ||
	    !need_math_dtype(ctx, op, "x", x) ||
	    !same_dtype(ctx, op, "x", x, "weight", w) ||
	    (bias && !same_dtype(ctx, op, "x", x, "bias", bias)))
		return NULL;
	if (x->ndim < 1 || w->ndim != 2 || x->shape[x->ndim - 1] != w->shape[1])
		return op_fail(ctx, op, "x's last dim must equal weight's in-features: "
			       "x is %s, weight (out, in) is %s", desc(x, d0), desc(w, d1));
	if (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0]))
		return op_fail(ctx, op, "bias must be (out): weight is %s, bias is %s",
			       desc(w, d0), desc(bias, d1));
	x = contig(ctx, x);
	w = contig(ctx, w);
	if (bias)
		bias = contig(ctx, bias);
	if (ctx->err.set)
		return NULL;
	int64_t shape[TENSOR_MAX_DIMS];
	memcpy(shape, x->shape, sizeof(shape));
	shape[x->ndim - 1] = w->shape[0];
	struct ag_node *n = node_new(ctx, op, 3, (struct tensor *[]){ x, w, bias });
	n->out = tensor_new(ctx->step, x->dtype, x->ndim, shape);
	return op_finish(ctx, n);
}

/* ----------------------------------------------------------- element-wise */

static struct tensor *broadcast_op(struct ag_ctx *ctx, enum ag_op op,
				   struct tensor *a, struct tensor *b)
{
	struct tensor *in[] = { a, b };
	char d0[DESC], d1[DESC];
	if (!op_begin(ctx, op, 2, in, (const char *[]){ "a", "b" }, 0) ||
	    !need_math_dtype(ctx, op, "a", a) || !same_dtype(ctx, op, "a", a, "b", b))
		return NULL;
	int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
	int64_t shape[TENSOR_MAX_DIMS];
	for (int d = 0; d < nd; d++) {
		int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
		int64_t sa = da >= 0 ? a->shape[da] : 1;
		int64_t sb = db >= 0 ? b->shape[db] : 1;
		if (sa != sb && sa != 1 && sb != 1)
			return op_fail(ctx, op, "shapes do not broadcast: a is %s, b is %s",
				       desc(a, d0), desc(b, d1));
		shape[d] = sa == 1 ? sb : sa;
	}
	a = contig(ctx, a);
	b = contig(ctx, b);
	if (ctx->err.set)
		return NULL;
	struct ag_node *n = node_new(ctx, op, 2, (struct tensor *[]){ a, b });
	n->out = tensor_new(ctx->step, a->dtype, nd, shape);
	return op_finish(ctx, n);
}

struct tensor *ag_add(struct ag_ctx *ctx, struct tensor *a, struct tensor *b)
{
	return broadcast_op(ctx, AG_OP_ADD, a, b);
}

struct tensor *ag_mul(struct ag_ctx *ctx, struct tensor *a, struct tensor *b)
{
	return broadcast_op(ctx, AG_OP_MUL, a, b);
}

/* Validation shared by the one-input float ops; returns x made contiguous,
 * or NULL. */
static struct tensor *unary_begin(struct ag_ctx *ctx, enum ag_op op,
				  struct tensor *x)
{
	if (!op_begin(ctx, op, 1, &x, (const char *[]){ "x" }, 0) ||
	    !need_math_dtype(ctx, op, "x", x))
		return NULL;
	return contig(ctx, x);
}

static struct tensor *unary_same_shape(struct ag_ctx *ctx, enum ag_op op,
				       struct tensor *x, struct ag_node **np)
{
	x = unary_begin(ctx, op, x);
	if (!x)
		return NULL;
	struct ag_node *n = node_new(ctx, op, 1, &x);
	n->out = tensor_new_like(ctx->step, x);
	*np = n;
	return x;
}

struct tensor *ag_scale(struct ag_ctx *ctx, struct tensor *x, double alpha)
{
	struct ag_node *n;
	if (!unary_same_shape(ctx, AG_OP_SCALE, x, &n))
		return NULL;
	n->p.scale.alpha = alpha;
	return op_finish(ctx, n);
}

struct tensor *ag_gelu(struct ag_ctx *ctx, struct tensor *x)
{
	struct ag_node *n;
	if (!unary_same_shape(ctx, AG_OP_GELU, x, &n))
		return NULL;
	return op_finish(ctx, n);
}

struct tensor *ag_softmax(struct ag_ctx *ctx, struct tensor *x)
{
	char d[DESC];
	if (x && x->ndim < 1)
		return op_fail(ctx, AG_OP_SOFTMAX, "x needs at least 1 dim, got %s", desc(x, d));
	struct ag_node *n;
	if (!unary_same_shape(ctx, AG_OP_SOFTMAX, x, &n))
		return NULL;
	return op_finish(ctx, n);
}

struct tensor *ag_dropout(struct ag_ctx *ctx, struct tensor *x, double p)
{
	if (ctx->err.set)
		return NULL;
	if (!(p >= 0.0 && p < 1.0))
		return op_fail(ctx, AG_OP_DROPOUT, "p must be in [0, 1), got %g", p);
	if (p == 0.0 || !ctx->training)
		return x;
	struct ag_node *n;
	if (!unary_same_shape(ctx, AG_OP_DROPOUT, x, &n))
		return NULL;
	n->p.dropout.p = p;
	n->p.dropout.seed = ctx->seed;
	n->p.dropout.offset = ctx->rng_offset;
	ctx->rng_offset += (uint64_t)tensor_numel(n->out);
	return op_finish(ctx, n);
}

/* ------------------------------------------------------------- reductions */

static struct tensor *reduce_op(struct ag_ctx *ctx, enum ag_op op,
				struct tensor *x, int dim)
{
	char d[DESC];
	x = unary_begin(ctx, op, x);
	if (!x)
		return NULL;
	int64_t shape[TENSOR_MAX_DIMS];
	int nd = 0;
	if (dim != AG_DIM_ALL) {
		int dd = norm_dim(dim, x->ndim);
		if (dd < 0 || dd >= x->ndim)
			return op_fail(ctx, op, "dim %d out of range for x %s", dim, desc(x, d));
		for (int i = 0; i < x->ndim; i++)
			if (i != dd)
				shape[nd++] = x->shape[i];
		dim = dd;
	}
	struct ag_node *n = node_new(ctx, op, 1, &x);
	n->p.reduce.dim = dim;
	n->out = tensor_new(ctx->step, x->dtype, nd, shape);
	return op_finish(ctx, n);
}

struct tensor *ag_sum(struct ag_ctx *ctx, struct tensor *x, int dim)
{
	return reduce_op(ctx, AG_OP_SUM, x, dim);
}

struct tensor *ag_mean(struct ag_ctx *ctx, struct tensor *x, int dim)
{
	return reduce_op(ctx, AG_OP_MEAN, x, dim);
}

/* ------------------------------------------------------------------ views */

/* A view of x sharing its storage, recorded as op `op`. */
static struct ag_node *view_node(struct ag_ctx *ctx, enum ag_op op, struct tensor *x)
{
	struct ag_node *n = node_new(ctx, op, 1, &x);
	struct tensor *o = arena_alloc_meta(ctx->step, sizeof(*o));
	*o = *x;
	o->grad = NULL;
	o->requires_grad = false;
	o->node = NULL;
	o->name = NULL;
	n->out = o;
	return n;
}

struct tensor *ag_view(struct ag_ctx *ctx, struct tensor *x, int ndim,
		       const int64_t *shape)
{
	const enum ag_op op = AG_OP_VIEW;
	char d[DESC];
	if (!op_begin(ctx, op, 1, &x, (const char *[]){ "x" }, 0))
		return NULL;
	if (ndim < 0 || ndim > TENSOR_MAX_DIMS)
		return op_fail(ctx, op, "%d dims requested (at most %d)", ndim, TENSOR_MAX_DIMS);
	if (!tensor_is_contiguous(x))
		return op_fail(ctx, op, "x %s is not contiguous (use ag_reshape)", desc(x, d));
	int64_t s[TENSOR_MAX_DIMS], known = 1;
	int infer = -1;
	for (int i = 0; i < ndim; i++) {
		s[i] = shape[i];
		if (s[i] == -1 && infer < 0)
			infer = i;
		else if (s[i] < 0)
			return op_fail(ctx, op, "bad size %lld at dim %d", (long long)s[i], i);
		else
			known *= s[i];
	}
	int64_t numel = tensor_numel(x);
	if (infer >= 0) {
		if (known == 0 || numel % known)
			return op_fail(ctx, op, "cannot infer dim %d: x is %s", infer, desc(x, d));
		s[infer] = numel / known;
		known *= s[infer];
	}
	if (known != numel) {
		char want[DESC] = "[", *p = want + 1;
		for (int i = 0; i < ndim; i++)
			p += snprintf(p, (size_t)(want + DESC - p), "%s%lld", i ? ", " : "", (long long)s[i]);
		snprintf(p, (size_t)(want + DESC - p), "]");
		return op_fail(ctx, op, "x %s has %lld elements, shape %s has %lld",
			       desc(x, d), (long long)numel, want, (long long)known);
	}
	struct ag_node *n = view_node(ctx, op, x);
	n->out->ndim = ndim;
	for (int i = 0; i < TENSOR_MAX_DIMS; i++)
		n->out->shape[i] = i < ndim ? s[i] : 1;
	tensor_contiguous_strides(ndim, n->out->shape, n->out->stride);
	for (int i = ndim; i < TENSOR_MAX_DIMS; i++)
		n->out->stride[i] = 0;
	return op_finish(ctx, n);
}

struct tensor *ag_reshape(struct ag_ctx *ctx, struct tensor *x, int ndim,
			  const int64_t *shape)
{
	if (ctx->err.set || !x)
		return ag_view(ctx, x, ndim, shape);
	return ag_view(ctx, contig(ctx, x), ndim, shape);
}

struct tensor *ag_permute(struct ag_ctx *ctx, struct tensor *x, const int *perm)
{
	const enum ag_op op = AG_OP_PERMUTE;
	char d[DESC];
	if (!op_begin(ctx, op, 1, &x, (const char *[]){ "x" }, 0))
		return NULL;
	unsigned seen = 0;
	for (int i = 0; i < x->ndim; i++) {
		if (perm[i] < 0 || perm[i] >= x->ndim || (seen & (1u << perm[i])))
			return op_fail(ctx, op, "not a permutation of the %d dims of x %s",
				       x->ndim, desc(x, d));
		seen |= 1u << perm[i];
	}
	struct ag_node *n = view_node(ctx, op, x);
	for (int i = 0; i < x->ndim; i++) {
		n->out->shape[i] = x->shape[perm[i]];
		n->out->stride[i] = x->stride[perm[i]];
		n->p.permute.perm[i] = perm[i];
	}
	return op_finish(ctx, n);
}

struct tensor *ag_transpose(struct ag_ctx *ctx, struct tensor *x, int d0, int d1)
{
	char d[DESC];
	if (ctx->err.set || !x)
		return ag_permute(ctx, x, NULL);
	int a = norm_dim(d0, x->ndim), b = norm_dim(d1, x->ndim);
	if (a < 0 || a >= x->ndim || b < 0 || b >= x->ndim)
		return op_fail(ctx, AG_OP_PERMUTE, "transpose dims %d, %d out of range for x %s",
			       d0, d1, desc(x, d));
	int perm[TENSOR_MAX_DIMS];
	for (int i = 0; i < TENSOR_MAX_DIMS; i++)
		perm[i] = i;
	perm[a] = b;
	perm[b] = a;
	return ag_permute(ctx, x, perm);
}

struct tensor *ag_slice(struct ag_ctx *ctx, struct tensor *x, int dim,
			int64_t start, int64_t len)
{
	const enum ag_op op = AG_OP_SLICE;
	char d[DESC];
	if (!op_begin(ctx, op, 1, &x, (const char *[]){ "x" }, 0))
		return NULL;
	int dd = norm_dim(dim, x->ndim);
	if (dd < 0 || dd >= x->ndim)
		return op_fail(ctx, op, "dim %d out of range for x %s", dim, desc(x, d));
	if (start < 0 || len < 0 || start + len > x->shape[dd])
		return op_fail(ctx, op, "range [%lld, %lld) out of bounds for dim %d of x %s",
			       (long long)start, (long long)(start + len), dd, desc(x, d));
	struct ag_node *n = view_node(ctx, op, x);
	n->out->shape[dd] = len;
	n->out->data = (char *)x->data + start * x->stride[dd] * (int64_t)dtype_size(x->dtype);
	n->p.slice.dim = dd;
	n->p.slice.start = start;
	return op_finish(ctx, n);
}

struct tensor *ag_contiguous(struct ag_ctx *ctx, struct tensor *x)
{
	if (!op_begin(ctx, AG_OP_CONTIGUOUS, 1, &x, (const char *[]){ "x" }, 0))
		return NULL;
	if (tensor_is_contiguous(x))
		return x;
	struct ag_node *n = node_new(ctx, AG_OP_CONTIGUOUS, 1, &x);
	n->out = tensor_new_like(ctx->step, x);
	return op_finish(ctx, n);
}

struct tensor *ag_cast(struct ag_ctx *ctx, struct tensor *x, enum dtype dt)
{
	const enum ag_op op = AG_OP_CAST;
	char d[DESC];
	if (!op_begin(ctx, op, 1, &x, (const char *[]){ "x" }, 0))
		return NULL;
	if (!dtype_is_float(x->dtype) || !dtype_is_float(dt))
		return op_fail(ctx, op, "only float dtypes convert: x is %s, target %s",
			       desc(x, d), dtype_name(dt));
	if (x->dtype == dt)
		return x;
	x = contig(ctx, x);
	if (!x)
		return NULL;
	struct ag_node *n = node_new(ctx, op, 1, &x);
	n->out = tensor_new(ctx->step, dt, x->ndim, x->shape);
	return op_finish(ctx, n);
}

/* -------------------------------------------------------- network layers */

/* The position of the first i32 value of contiguous t outside [lo, hi) and
 * not equal to `skip`, with that value in *value, found by the backend of
 * t's device (on the GPU this waits for the stream); -1 when all are
 * inside, or when that backend cannot check (no hook). */
static int64_t find_out_of_range(const struct tensor *t, int64_t lo, int64_t hi,
				 int64_t skip, int32_t *value)
{
	const struct ag_backend *be = ag_backend_get(t->device);
	if (!be || !be->find_out_of_range)
		return -1;
	return be->find_out_of_range(t, lo, hi, skip, value);
}

struct tensor *ag_embedding(struct ag_ctx *ctx, struct tensor *ids,
			    struct tensor *w)
{
	return ag_embedding_shard(ctx, ids, w, 0, w ? w->shape[0] : 0);
}

struct tensor *ag_embedding_shard(struct ag_ctx *ctx, struct tensor *ids,
				  struct tensor *w, int64_t vocab_offset,
				  int64_t vocab_total)
{
	const enum ag_op op = AG_OP_EMBEDDING;
	struct tensor *in[] = { ids, w };
	char d0[DESC], d1[DESC];
	if (!op_begin(ctx, op, 2, in, (const char *[]){ "ids", "weight" }, 0) ||
	    !need_i32(ctx, op, "ids", ids) || !need_math_dtype(ctx, op, "weight", w))
		return NULL;
	if (w->ndim != 2 || ids->ndim >= TENSOR_MAX_DIMS)
		return op_fail(ctx, op, "weight must be (V, C) and ids at most %d-D: "
			       "ids is %s, weight is %s", TENSOR_MAX_DIMS - 1,
			       desc(ids, d0), desc(w, d1));
	ids = contig(ctx, ids);
	w = contig(ctx, w);
	if (ctx->err.set)
		return NULL;
	if (vocab_offset < 0 || vocab_offset + w->shape[0] > vocab_total)
		return op_fail(ctx, op, "rows [%lld, %lld) of the weight %s are outside the "
			       "vocabulary [0, %lld)", (long long)vocab_offset,
			       (long long)(vocab_offset + w->shape[0]), desc(w, d1),
			       (long long)vocab_total);
	int32_t badv = 0;
	int64_t bad = find_out_of_range(ids, 0, vocab_total, INT64_MIN, &badv);
	if (bad >= 0)
		return op_fail(ctx, op, "id %d at position %lld is outside the vocabulary [0, %lld)",
			       badv, (long long)bad, (long long)vocab_total);
	int64_t shape[TENSOR_MAX_DIMS];
	memcpy(shape, ids->shape, sizeof(shape));
	shape[ids->ndim] = w->shape[1];
	struct ag_node *n = node_new(ctx, op, 2, (struct tensor *[]){ ids, w });
	n->out = tensor_new(ctx->step, w->dtype, ids->ndim + 1, shape);
	n->p.embedding.vocab_offset = vocab_offset;
	return op_finish(ctx, n);
}

struct tensor *ag_layernorm(struct ag_ctx *ctx, struct tensor *x,
			    struct tensor *weight, struct tensor *bias, double eps)
{
	const enum ag_op op = AG_OP_LAYERNORM;
	struct tensor *in[] = { x, weight, bias };
	char d0[DESC], d1[DESC];
	if (!op_begin(ctx, op, 3, in, (const char *[]){ "x", "weight", "bias" }, 4u) ||
	    !need_math_dtype(ctx, op, "x", x) ||
	    !same_dtype(ctx, op, "x", x, "weight", weight) ||
	    (bias && !same_dtype(ctx, op, "x", x, "bias", bias)))
		return NULL;
	int64_t c = x->ndim ? x->shape[x->ndim - 1] : 0;
	if (x->ndim < 1 || weight->ndim != 1 || weight->shape[0] != c)
		return op_fail(ctx, op, "weight must be (C) for x (..., C): x is %s, weight is %s",
			       desc(x, d0), desc(weight, d1));
	if (bias && (bias->ndim != 1 || bias->shape[0] != c))
		return op_fail(ctx, op, "bias must be (C) for x (..., C): x is %s, bias is %s",
			       desc(x, d0), desc(bias, d1));
	if (!(eps > 0))
		return op_fail(ctx, op, "eps must be > 0, got %g", eps);
	x = contig(ctx, x);
	weight = contig(ctx, weight);
	if (bias)
		bias = contig(ctx, bias);
	if (ctx->err.set)
		return NULL;
	struct ag_node *n = node_new(ctx, op, 3, (struct tensor *[]){ x, weight, bias });
	int64_t rows = tensor_numel(x) / (c ? c : 1);
	n->out = tensor_new_like(ctx->step, x);
	n->saved[0] = tensor_new(ctx->step, stat_dtype(x->dtype), 1, &rows); /* mean (R) */
	n->saved[1] = tensor_new(ctx->step, stat_dtype(x->dtype), 1, &rows); /* rstd (R) */
	n->p.layernorm.eps = eps;
	return op_finish(ctx, n);
}

/* q/k/v may be strided views but need a unit stride on D and positions
 * that do not overlap (a stride on T of at least D), as the CPU kernel's
 * GEMMs want. */
static struct tensor *unit_last_stride(struct ag_ctx *ctx, struct tensor *t)
{
	int64_t d = t->shape[t->ndim - 1];
	bool unit = t->stride[t->ndim - 1] == 1 || d == 1;
	bool rows = t->shape[t->ndim - 2] <= 1 || t->stride[t->ndim - 2] >= d;
	return unit && rows ? t : ag_contiguous(ctx, t);
}

bool ag_attention_default_tiled(void)
{
	const char *env = getenv("HUG_ATTENTION");
	return !(env && strcmp(env, "exact") == 0);
}

/* Whether attention runs the tiled kernel: asked for, or the default. */
static bool attn_tiled(enum ag_attn_kernel kernel)
{
	if (kernel != AG_ATTN_KERNEL_DEFAULT)
		return kernel == AG_ATTN_KERNEL_TILED;
	return ag_attention_default_tiled();
}

struct tensor *ag_attention(struct ag_ctx *ctx, struct tensor *q, struct tensor *k,
			    struct tensor *v, const struct ag_attn_desc *ad)
{
	const enum ag_op op = AG_OP_ATTENTION;
	if (ctx->err.set)
		return NULL;
	if (!ad)
		return op_fail(ctx, op, "no description (struct ag_attn_desc) given");
	struct tensor *slopes = ad->slopes, *mask = ad->key_mask, *seg = ad->segments;
	double p = ad->dropout;
	int64_t head_offset = ad->head_offset;
	int64_t n_head_total = ad->n_head_total ? ad->n_head_total : q ? q->shape[1] : 0;
	if (ad->pos_bias != AG_POS_BIAS_NONE && ad->pos_bias != AG_POS_BIAS_ALIBI)
		return op_fail(ctx, op, "unknown position-bias mode %d", (int)ad->pos_bias);
	if ((ad->pos_bias == AG_POS_BIAS_ALIBI) != (slopes != NULL))
		return op_fail(ctx, op, "ALiBi needs slopes and other position-bias modes take "
			       "none: mode %s with slopes %s",
			       ad->pos_bias == AG_POS_BIAS_ALIBI ? "alibi" : "none",
			       slopes ? "given" : "NULL");
	if (ad->kernel != AG_ATTN_KERNEL_DEFAULT && ad->kernel != AG_ATTN_KERNEL_TILED &&
	    ad->kernel != AG_ATTN_KERNEL_EXACT)
		return op_fail(ctx, op, "unknown kernel %d (default, tiled or exact)",
			       (int)ad->kernel);
	struct tensor *in[] = { q, k, v, slopes, mask, seg };
	char d0[DESC], d1[DESC], d2[DESC];
	if (!op_begin(ctx, op, 6, in,
		      (const char *[]){ "q", "k", "v", "slopes", "mask", "segments" },
		      8u | 16u | 32u) ||
	    !need_math_dtype(ctx, op, "q", q) || !same_dtype(ctx, op, "q", q, "k", k) ||
	    !same_dtype(ctx, op, "q", q, "v", v) ||
	    (slopes && !same_dtype(ctx, op, "q", q, "slopes", slopes)) ||
	    (mask && !need_i32(ctx, op, "mask", mask)) ||
	    (seg && !need_i32(ctx, op, "segments", seg)))
		return NULL;
	if (!(p >= 0.0 && p < 1.0))
		return op_fail(ctx, op, "dropout p must be in [0, 1), got %g", p);
	if (ad->window < 0 || (ad->window && !ad->causal))
		return op_fail(ctx, op, "the sliding window must be >= 0 and needs causal "
			       "attention: window %lld with causal %s",
			       (long long)ad->window, ad->causal ? "true" : "false");
	if (q && (head_offset < 0 || head_offset + q->shape[1] > n_head_total))
		return op_fail(ctx, op, "heads [%lld, %lld) are outside the %lld heads",
			       (long long)head_offset, (long long)(head_offset + q->shape[1]),
			       (long long)n_head_total);
	if (q->ndim != 4 || !tensor_same_shape(k, v) || k->ndim != 4 ||
	    q->shape[0] != k->shape[0] || k->shape[1] < 1 || q->shape[1] % k->shape[1] ||
	    q->shape[3] != k->shape[3] || q->shape[2] > k->shape[2])
		return op_fail(ctx, op, "q must be (B, H, Tq, D) and k, v (B, Hkv, Tk, D) "
			       "with Tq <= Tk and H a multiple of Hkv: q is %s, k is %s, v is %s",
			       desc(q, d0), desc(k, d1), desc(v, d2));
	if (q->shape[3] < 1)
		return op_fail(ctx, op, "the head size D must be at least 1: q is %s",
			       desc(q, d0));
	int64_t b = q->shape[0], h = q->shape[1], tq = q->shape[2], tk = k->shape[2];
	if (slopes && (slopes->ndim != 1 || slopes->shape[0] != h))
		return op_fail(ctx, op, "slopes must be (H) = (%lld), got %s",
			       (long long)h, desc(slopes, d0));
	if (mask && (mask->ndim != 2 || mask->shape[0] != b || mask->shape[1] != tk))
		return op_fail(ctx, op, "mask must be (B, Tk) = (%lld, %lld), got %s",
			       (long long)b, (long long)tk, desc(mask, d0));
	if (seg && (seg->ndim != 2 || seg->shape[0] != b || seg->shape[1] != tk))
		return op_fail(ctx, op, "segments must be (B, Tk) = (%lld, %lld), got %s",
			       (long long)b, (long long)tk, desc(seg, d0));
	q = unit_last_stride(ctx, q);
	k = unit_last_stride(ctx, k);
	v = unit_last_stride(ctx, v);
	if (slopes)
		slopes = contig(ctx, slopes);
	if (mask)
		mask = contig(ctx, mask);
	if (seg)
		seg = contig(ctx, seg);
	if (ctx->err.set)
		return NULL;
	struct ag_node *n = node_new(ctx, op, 6,
				     (struct tensor *[]){ q, k, v, slopes, mask, seg });
	n->out = tensor_new(ctx->step, q->dtype, 4, q->shape);
	/* tiled: the log-sum-exp of each row (B, H, Tq); exact: the
	 * probabilities (B, H, Tq, Tk); kept for backward. A backend's own
	 * scratch comes from its scratch_numel hook (op_finish) */
	n->p.attention.tiled = attn_tiled(ad->kernel);
	n->saved[0] = n->p.attention.tiled
		? tensor_new(ctx->step, stat_dtype(q->dtype), TENSOR_SHAPE(b, h, tq))
		: tensor_new(ctx->step, q->dtype, TENSOR_SHAPE(b, h, tq, tk));
	n->p.attention.scale = 1.0 / sqrt((double)q->shape[3]);
	n->p.attention.causal = ad->causal;
	n->p.attention.window = ad->window;
	n->p.attention.alibi = slopes != NULL;
	n->p.attention.group = h / k->shape[1];
	n->p.attention.head_offset = head_offset;
	n->p.attention.n_head_total = n_head_total;
	if (ctx->training && p > 0.0) {
		/* numbered over all heads, so each head's mask does not depend
		 * on how heads are split over tensor-parallel ranks */
		n->p.attention.p = p;
		n->p.attention.seed = ctx->seed;
		n->p.attention.offset = ctx->rng_offset;
		ctx->rng_offset += (uint64_t)(b * n_head_total * tq * tk);
	}
	return op_finish(ctx, n);
}

struct tensor *ag_cross_entropy(struct ag_ctx *ctx, struct tensor *logits,
				struct tensor *targets, int32_t ignore_index)
{
	return ag_cross_entropy_shard(ctx, logits, targets, ignore_index, 0,
				      logits ? logits->shape[logits->ndim - 1] : 0, NULL);
}

struct tensor *ag_cross_entropy_shard(struct ag_ctx *ctx, struct tensor *logits,
				      struct tensor *targets, int32_t ignore_index,
				      int64_t vocab_offset, int64_t vocab_total,
				      const struct ag_collective *coll)
{
	const enum ag_op op = AG_OP_CROSS_ENTROPY;
	struct tensor *in[] = { logits, targets };
	char d0[DESC], d1[DESC];
	if (!op_begin(ctx, op, 2, in, (const char *[]){ "logits", "targets" }, 0) ||
	    !need_math_dtype(ctx, op, "logits", logits) ||
	    !need_i32(ctx, op, "targets", targets))
		return NULL;
	bool ok = logits->ndim >= 1 && targets->ndim == logits->ndim - 1;
	for (int d = 0; ok && d < targets->ndim; d++)
		ok = targets->shape[d] == logits->shape[d];
	if (!ok)
		return op_fail(ctx, op, "targets must be logits' shape without the last dim: "
			       "logits is %s, targets is %s", desc(logits, d0), desc(targets, d1));
	logits = contig(ctx, logits);
	targets = contig(ctx, targets);
	if (ctx->err.set)
		return NULL;
	int64_t vocab = vocab_total, local = logits->shape[logits->ndim - 1];
	if (vocab_offset < 0 || vocab_offset + local > vocab_total ||
	    (!(coll && coll->size > 1) && local != vocab_total))
		return op_fail(ctx, op, "logits %s are not a slice at %lld of a vocabulary of %lld",
			       desc(logits, d0), (long long)vocab_offset, (long long)vocab_total);
	int32_t badv = 0;
	int64_t bad = find_out_of_range(targets, 0, vocab, ignore_index, &badv);
	if (bad >= 0)
		return op_fail(ctx, op, "target %d at position %lld is outside [0, %lld) "
			       "and is not the ignore index %d",
			       badv, (long long)bad, (long long)vocab, ignore_index);
	int64_t rows = tensor_numel(targets);
	struct ag_node *n = node_new(ctx, op, 2, (struct tensor *[]){ logits, targets });
	/* the loss in f32 also for bf16 logits (mixed precision) */
	n->out = tensor_new(ctx->step, stat_dtype(logits->dtype), 0, NULL);
	n->saved[0] = tensor_new(ctx->step, stat_dtype(logits->dtype), 1, &rows); /* logsumexp (N) */
	n->p.cross_entropy.ignore_index = ignore_index;
	n->p.cross_entropy.vocab_offset = vocab_offset;
	if (coll && coll->size > 1) {
		n->p.cross_entropy.coll = coll;
		n->saved[1] = tensor_new(ctx->step, stat_dtype(logits->dtype), 1, &rows); /* target logit (N) */
	}
	return op_finish(ctx, n);
}

/* ------------------------------------------- Llama-family layers */

struct tensor *ag_rmsnorm(struct ag_ctx *ctx, struct tensor *x, struct tensor *w, double eps)
{
	const enum ag_op op = AG_OP_RMSNORM;
	struct tensor *in[] = { x, w };
	char d0[DESC], d1[DESC];
	if (!op_begin(ctx, op, 2, in, (const char *[]){ "x", "w" }, 2u) ||
	    !need_math_dtype(ctx, op, "x", x) || (w && !same_dtype(ctx, op, "x", x, "w", w)))
		return NULL;
	if (x->ndim < 1)
		return op_fail(ctx, op, "x must be (..., C), got %s", desc(x, d0));
	int64_t c = x->shape[x->ndim - 1];
	if (w && (w->ndim != 1 || w->shape[0] != c))
		return op_fail(ctx, op, "w must be (C) for x (..., C): x is %s, w is %s",
			       desc(x, d0), desc(w, d1));
	if (!(eps > 0) || !isfinite(eps))
		return op_fail(ctx, op, "eps must be a finite number > 0, got %g", eps);
	x = contig(ctx, x);
	if (w)
		w = contig(ctx, w);
	if (ctx->err.set)
		return NULL;
	struct ag_node *n = node_new(ctx, op, 2, (struct tensor *[]){ x, w });
	int64_t rows = c ? tensor_numel(x) / c : 0;
	n->out = tensor_new_like(ctx->step, x);
	n->saved[0] = tensor_new(ctx->step, stat_dtype(x->dtype), 1, &rows); /* 1/rms (R) */
	n->p.rmsnorm.eps = eps;
	return op_finish(ctx, n);
}

struct tensor *ag_rope(struct ag_ctx *ctx, struct tensor *x, struct tensor *pos,
		       struct tensor *inv_freq)
{
	const enum ag_op op = AG_OP_ROPE;
	struct tensor *in[] = { x, pos, inv_freq };
	char d0[DESC], d1[DESC], d2[DESC];
	if (!op_begin(ctx, op, 3, in, (const char *[]){ "x", "pos", "inv_freq" }, 0) ||
	    !need_math_dtype(ctx, op, "x", x) || !need_i32(ctx, op, "pos", pos))
		return NULL;
	if (inv_freq->dtype != DT_F64)
		return op_fail(ctx, op, "inv_freq must be f64 (whatever x's dtype), got %s",
			       desc(inv_freq, d0));
	if (x->ndim != 4 || x->shape[3] % 2 || pos->ndim != 2 ||
	    pos->shape[0] != x->shape[0] || pos->shape[1] != x->shape[2] ||
	    inv_freq->ndim != 1 || inv_freq->shape[0] != x->shape[3] / 2)
		return op_fail(ctx, op, "x must be (B, H, T, D) with D even, pos (B, T) and "
			       "inv_freq (D/2): x is %s, pos is %s, inv_freq is %s",
			       desc(x, d0), desc(pos, d1), desc(inv_freq, d2));
	if (x->stride[3] != 1 && x->shape[3] > 1)
		x = ag_contiguous(ctx, x);
	pos = contig(ctx, pos);
	inv_freq = contig(ctx, inv_freq);
	if (ctx->err.set)
		return NULL;
	struct ag_node *n = node_new(ctx, op, 3, (struct tensor *[]){ x, pos, inv_freq });
	n->out = tensor_new(ctx->step, x->dtype, 4, x->shape);
	return op_finish(ctx, n);
}

struct tensor *ag_silu(struct ag_ctx *ctx, struct tensor *x)
{
	struct ag_node *n;
	if (!unary_same_shape(ctx, AG_OP_SILU, x, &n))
		return NULL;
	return op_finish(ctx, n);
}

struct tensor *ag_swiglu(struct ag_ctx *ctx, struct tensor *gate, struct tensor *up)
{
	const enum ag_op op = AG_OP_SWIGLU;
	struct tensor *in[] = { gate, up };
	char d0[DESC], d1[DESC];
	if (!op_begin(ctx, op, 2, in, (const char *[]){ "gate", "up" }, 0) ||
	    !need_math_dtype(ctx, op, "gate", gate) ||
	    !same_dtype(ctx, op, "gate", gate, "up", up))
		return NULL;
	if (!tensor_same_shape(gate, up))
		return op_fail(ctx, op, "gate and up must have the same shape: gate is %s, up is %s",
			       desc(gate, d0), desc(up, d1));
	gate = contig(ctx, gate);
	up = contig(ctx, up);
	if (ctx->err.set)
		return NULL;
	struct ag_node *n = node_new(ctx, op, 2, (struct tensor *[]){ gate, up });
	n->out = tensor_new_like(ctx->step, gate);
	return op_finish(ctx, n);
}

/* ------------------------------------------------------ tensor parallel */

struct tensor *ag_tp_copy(struct ag_ctx *ctx, struct tensor *x,
			  const struct ag_collective *coll)
{
	if (!op_begin(ctx, AG_OP_TP_COPY, 1, &x, (const char *[]){ "x" }, 0))
		return NULL;
	if (!coll || coll->size <= 1)
		return x;
	struct ag_node *n = view_node(ctx, AG_OP_TP_COPY, x);
	n->p.tp.coll = coll;
	return op_finish(ctx, n);
}

struct tensor *ag_tp_reduce(struct ag_ctx *ctx, struct tensor *x,
			    const struct ag_collective *coll)
{
	if (!op_begin(ctx, AG_OP_TP_REDUCE, 1, &x, (const char *[]){ "x" }, 0) ||
	    !need_math_dtype(ctx, AG_OP_TP_REDUCE, "x", x))
		return NULL;
	if (!coll || coll->size <= 1)
		return x;
	x = contig(ctx, x);
	if (!x)
		return NULL;
	struct ag_node *n = node_new(ctx, AG_OP_TP_REDUCE, 1, &x);
	n->out = tensor_new_like(ctx->step, x);
	n->p.tp.coll = coll;
	return op_finish(ctx, n);
}
