/* gradcheck.c: the finite-difference gradient checker of tests/gradcheck.h
 * (central differences in double against ag_backward_from). */
#include "gradcheck.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../base/alloc.h"

#define GC_DEFAULT_H 1e-6
#define GC_DEFAULT_ATOL 1e-7
#define GC_DEFAULT_RTOL 1e-5
#define GC_DEFAULT_SEED 0x5eedf00dull

/* splitmix64: test data only, independent of the engine's RNG. */
static uint64_t mix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double uniform01(uint64_t *state)
{
	return (double)(mix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

void gradcheck_fill_uniform(struct tensor *t, uint64_t seed, double lo,
			    double hi)
{
	int64_t n = tensor_numel(t);
	double *v = hug_malloc((size_t)n * sizeof(*v));
	uint64_t s = seed;
	for (int64_t i = 0; i < n; i++)
		v[i] = lo + (hi - lo) * uniform01(&s);
	tensor_write_f64(t, v);
	hug_free(v);
}

/* Address of the flat (row-major) element i of a host f32/f64 tensor. */
static void *element_at(const struct tensor *t, int64_t i)
{
	int64_t off = 0;
	for (int d = t->ndim - 1; d >= 0; d--) {
		off += (i % t->shape[d]) * t->stride[d];
		i /= t->shape[d];
	}
	return (char *)t->data + off * (int64_t)dtype_size(t->dtype);
}

static double get_elem(const struct tensor *t, int64_t i)
{
	void *p = element_at(t, i);
	return t->dtype == DT_F64 ? *(double *)p : (double)*(float *)p;
}

/* Stores v (rounded to the tensor's dtype) and returns the stored value. */
static double set_elem(struct tensor *t, int64_t i, double v)
{
	void *p = element_at(t, i);
	if (t->dtype == DT_F64) {
		*(double *)p = v;
		return v;
	}
	*(float *)p = (float)v;
	return (double)*(float *)p;
}

static bool is_checked(const struct tensor *t)
{
	return t && dtype_is_float(t->dtype) && t->requires_grad;
}

/* State shared by the passes of one check. */
struct gc_run {
	const char *name;
	gradcheck_build_fn build;
	struct tensor **inputs;
	int n_inputs;
	void *user;
	struct ag_ctx ctx;
	uint64_t seed0, offset0;
	struct tensor out0;    /* header of the analytic pass's output, copied
				  (its storage dies at the first reset) */
	int64_t n_out;
	double *r;             /* R, as stored in the output's dtype */
	double *buf;           /* scratch: output values */
	struct gradcheck_result *res;
};

/* Records "<name>: <printf-formatted>" as the failure; returns -1. */
static int fail(struct gc_run *g, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct gc_run *g, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(g->res->msg, sizeof(g->res->msg), "%s: ", g->name);
	if (n < 0 || (size_t)n >= sizeof(g->res->msg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(g->res->msg + n, sizeof(g->res->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	g->res->ok = false;
	return -1;
}

/* One forward under no_grad from a fresh step; *L = sum(out * R). */
static int forward_objective(struct gc_run *g, double *L)
{
	char d0[64], d1[64];
	ag_ctx_reset(&g->ctx);
	g->ctx.seed = g->seed0;
	g->ctx.rng_offset = g->offset0;
	struct tensor *out = g->build(&g->ctx, g->inputs, g->user);
	if (!out)
		return fail(g, "forward under no_grad failed: %s",
			    g->ctx.err.set ? g->ctx.err.msg : "build returned NULL");
	if (!tensor_same_shape(out, &g->out0) || out->dtype != g->out0.dtype)
		return fail(g, "no_grad forward gave %s, the first forward %s",
			    tensor_describe(out, d0, sizeof(d0)),
			    tensor_describe(&g->out0, d1, sizeof(d1)));
	if (g->ctx.n_nodes != 0 || out->node || out->requires_grad)
		return fail(g, "forward under no_grad recorded: %lld nodes on "
			    "the tape, out->node %s, out->requires_grad %d",
			    (long long)g->ctx.n_nodes, out->node ? "set" : "NULL",
			    (int)out->requires_grad);
	tensor_read_f64(out, g->buf);
	double s = 0;
	for (int64_t i = 0; i < g->n_out; i++)
		s += g->buf[i] * g->r[i];
	*L = s;
	return 0;
}

/* The recorded forward and ag_backward_from(out, R); leaves the analytic
 * gradients in the inputs' .grad and returns L at the unperturbed point. */
static int analytic_pass(struct gc_run *g, uint64_t rseed, double *L)
{
	for (int i = 0; i < g->n_inputs; i++) {
		struct tensor *t = g->inputs[i];
		if (!is_checked(t))
			continue;
		if (!t->grad || t->node)
			return fail(g, "input %d is not a leaf made with "
				    "tensor_set_requires_grad", i);
		tensor_fill(t->grad, 0.0);
	}
	g->ctx.seed = g->seed0;
	g->ctx.rng_offset = g->offset0;
	struct tensor *out = g->build(&g->ctx, g->inputs, g->user);
	if (!out)
		return fail(g, "forward failed: %s",
			    g->ctx.err.set ? g->ctx.err.msg : "build returned NULL");
	if (!dtype_is_float(out->dtype) || !out->requires_grad)
		return fail(g, "output is not a float tensor that requires grad");
	g->out0 = *out;
	g->n_out = tensor_numel(out);
	g->r = hug_malloc((size_t)(g->n_out ? g->n_out : 1) * sizeof(double));
	g->buf = hug_malloc((size_t)(g->n_out ? g->n_out : 1) * sizeof(double));
	uint64_t s = rseed;
	for (int64_t i = 0; i < g->n_out; i++)
		g->r[i] = -1.0 + 2.0 * uniform01(&s);
	struct tensor *r = tensor_new(g->ctx.step, out->dtype, out->ndim, out->shape);
	tensor_write_f64(r, g->r);
	tensor_read_f64(r, g->r); /* the values R holds in the output's dtype */
	tensor_read_f64(out, g->buf);
	double sum = 0;
	for (int64_t i = 0; i < g->n_out; i++)
		sum += g->buf[i] * g->r[i];
	*L = sum;
	if (ag_backward_from(&g->ctx, out, r) != 0)
		return fail(g, "backward failed: %s", g->ctx.err.msg);
	return 0;
}

static void consider(struct gc_run *g, const struct gradcheck_opts *o, int in,
		     int64_t idx, double a, double n)
{
	struct gradcheck_result *res = g->res;
	double excess = fabs(a - n) - (o->atol + o->rtol * fabs(n));
	if (isnan(excess))
		excess = INFINITY;
	res->n_checked++;
	if (res->worst_input < 0 || excess > res->worst_excess) {
		res->worst_input = in;
		res->worst_index = idx;
		res->worst_analytic = a;
		res->worst_numeric = n;
		res->worst_excess = excess;
	}
}

/* Central differences over every element of input `in`. */
static int numeric_input(struct gc_run *g, const struct gradcheck_opts *o,
			 int in, const double *analytic)
{
	struct tensor *t = g->inputs[in];
	int64_t n = tensor_numel(t);
	for (int64_t j = 0; j < n; j++) {
		double x = get_elem(t, j), lp, lm;
		double xp = set_elem(t, j, x + o->h);
		int rc = forward_objective(g, &lp);
		double xm = set_elem(t, j, x - o->h);
		if (!rc)
			rc = forward_objective(g, &lm);
		set_elem(t, j, x);
		if (rc)
			return -1;
		consider(g, o, in, j, analytic[j], (lp - lm) / (xp - xm));
	}
	return 0;
}

static int run_checks(struct gc_run *g, const struct gradcheck_opts *o)
{
	double L = 0, L0 = 0;
	if (analytic_pass(g, o->seed, &L))
		return -1;
	bool prev = ag_set_grad_enabled(&g->ctx, false);
	int rc = forward_objective(g, &L0);
	if (!rc && !(fabs(L - L0) <= 1e-12 * (1.0 + fabs(L))))
		rc = fail(g, "the no_grad forward differs from the recorded one: "
			  "L = %.17g recorded, %.17g under no_grad", L, L0);
	for (int i = 0; i < g->n_inputs && !rc; i++) {
		struct tensor *t = g->inputs[i];
		if (!is_checked(t))
			continue;
		if (t->dtype != DT_F64 && t->dtype != DT_F32) {
			rc = fail(g, "input %d of dtype %s cannot be perturbed",
				  i, dtype_name(t->dtype));
			break;
		}
		int64_t n = tensor_numel(t);
		double *an = hug_malloc((size_t)(n ? n : 1) * sizeof(double));
		tensor_read_f64(t->grad, an);
		rc = numeric_input(g, o, i, an);
		hug_free(an);
	}
	ag_set_grad_enabled(&g->ctx, prev);
	return rc;
}

int gradcheck(const char *name, gradcheck_build_fn build,
	      struct tensor **inputs, int n_inputs, void *user,
	      const struct gradcheck_opts *opts, struct gradcheck_result *res)
{
	struct gradcheck_opts o = { .training = true };
	if (opts)
		o = *opts;
	if (o.h == 0)
		o.h = GC_DEFAULT_H;
	if (o.atol == 0)
		o.atol = GC_DEFAULT_ATOL;
	if (o.rtol == 0)
		o.rtol = GC_DEFAULT_RTOL;
	if (o.seed == 0)
		o.seed = GC_DEFAULT_SEED;

	memset(res, 0, sizeof(*res));
	res->ok = true;
	res->worst_input = -1;

	struct arena step;
	arena_init(&step, "gradcheck", 0, NULL);
	struct gc_run g = {
		.name = name, .build = build, .inputs = inputs,
		.n_inputs = n_inputs, .user = user, .res = res,
	};
	ag_ctx_init(&g.ctx, &step);
	g.ctx.training = o.training;
	g.seed0 = g.ctx.seed;
	g.offset0 = g.ctx.rng_offset;

	int rc = run_checks(&g, &o);
	if (!rc && res->n_checked == 0)
		rc = fail(&g, "no input requires grad: nothing checked");
	if (!rc && res->worst_excess > 0) {
		snprintf(res->msg, sizeof(res->msg),
			 "%s: gradient mismatch at input %d, flat index %lld: "
			 "analytic %.10g, numeric %.10g (|diff| %.3g, tolerance "
			 "atol %.1g + rtol %.1g); %lld elements checked",
			 name, res->worst_input, (long long)res->worst_index,
			 res->worst_analytic, res->worst_numeric,
			 fabs(res->worst_analytic - res->worst_numeric),
			 o.atol, o.rtol, (long long)res->n_checked);
		res->ok = false;
		rc = -1;
	}
	hug_free(g.r);
	hug_free(g.buf);
	arena_free(&step);
	return rc;
}
