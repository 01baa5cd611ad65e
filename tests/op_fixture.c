/* op_fixture.c: ops against committed float64 reference fixtures
 * (op_fixture.h). */
#include "op_fixture.h"

#include <math.h>
#include <string.h>

#include "../base/alloc.h"
#include "harness.h"

bool op_fx_init(struct op_fx *x, const char *path, enum dtype dt, double tol)
{
	struct hug_error err = { 0 };
	memset(x, 0, sizeof(*x));
	x->path = path;
	x->dt = dt;
	x->tol = tol;
	if (st_open(&x->f, path, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return false;
	}
	arena_init(&x->a, "test", 0, NULL);
	arena_init(&x->step, "step", 0, NULL);
	ag_ctx_init(&x->ctx, &x->step);
	return true;
}

void op_fx_free(struct op_fx *x)
{
	arena_free(&x->step);
	arena_free(&x->a);
	st_close(&x->f);
}

struct tensor *op_fx_load_as(struct op_fx *x, const char *key, enum dtype dt)
{
	struct hug_error err = { 0 };
	const struct st_tensor *s = st_find(&x->f, key);
	if (!s) {
		test_fail_at(__FILE__, __LINE__, "%s: no tensor \"%s\"", x->path, key);
		return NULL;
	}
	if (s->ndim > TENSOR_MAX_DIMS) {
		test_fail_at(__FILE__, __LINE__, "%s: \"%s\" has %d dims (at most %d)",
			     x->path, key, s->ndim, TENSOR_MAX_DIMS);
		return NULL;
	}
	struct tensor *t = tensor_new(&x->a, dt, s->ndim, s->shape);
	t->name = s->name;
	if (st_tensor_load(s, t, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return NULL;
	}
	return t;
}

struct tensor *op_fx_load(struct op_fx *x, const char *key)
{
	return op_fx_load_as(x, key, x->dt);
}

struct tensor *op_fx_leaf(struct op_fx *x, const char *key)
{
	struct tensor *t = op_fx_load(x, key);
	if (t)
		tensor_set_requires_grad(t, &x->a);
	return t;
}

void op_fx_compare(struct op_fx *x, const char *what, const struct tensor *got,
		   const char *key, double tol)
{
	char d0[96], d1[96];
	if (!got) {
		test_fail_at(__FILE__, __LINE__, "%s (%s): no tensor%s%s", what,
			     dtype_name(x->dt), x->ctx.err.set ? ": " : "", x->ctx.err.msg);
		return;
	}
	struct tensor *ref = op_fx_load_as(x, key, DT_F64);
	if (!ref)
		return;
	if (!tensor_same_shape(got, ref)) {
		test_fail_at(__FILE__, __LINE__, "%s: shape %s, want %s", what,
			     tensor_describe(got, d0, sizeof(d0)),
			     tensor_describe(ref, d1, sizeof(d1)));
		return;
	}
	int64_t n = tensor_numel(ref);
	double *g = hug_malloc((size_t)n * sizeof(double));
	const double *r = ref->data;
	tensor_read_f64(got, g);
	double maxdiff = 0, maxref = 0;
	int64_t worst = 0;
	for (int64_t i = 0; i < n; i++) {
		double diff = fabs(g[i] - r[i]);
		if (!(diff <= maxdiff)) { /* also catches NaN */
			maxdiff = diff;
			worst = i;
		}
		if (fabs(r[i]) > maxref)
			maxref = fabs(r[i]);
	}
	double e = maxdiff / (maxref > 1 ? maxref : 1);
	if (!(e <= tol))
		test_fail_at(__FILE__, __LINE__,
			     "%s (%s): error %.3g > %.3g (element %lld: got %.17g, want %.17g)",
			     what, dtype_name(x->dt), e, tol, (long long)worst,
			     n ? g[worst] : 0.0, n ? r[worst] : 0.0);
	hug_free(g);
}

bool op_fx_ok(struct op_fx *x, const char *stage)
{
	if (!ag_failed(&x->ctx))
		return true;
	test_fail_at(__FILE__, __LINE__, "%s (%s): %s", stage, dtype_name(x->dt), x->ctx.err.msg);
	return false;
}
