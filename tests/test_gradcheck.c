/* test_gradcheck.c: gradient checks (central differences in double) for
 * every op of autograd/autograd.h on odd shapes, forward values of the ops
 * against naive references written here, dropout's mask properties, the
 * ALiBi slopes, and the tape's grad-mode rules (no_grad records nothing, a
 * tensor that does not require grad gets none, backward accumulates). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../base/alloc.h"
#include "../nn/bloom.h"
#include "ag_env.h"
#include "gradcheck.h"
#include "harness.h"

/* ---- fixtures ---- */

/* An f64 leaf in the model arena, uniform in [lo, hi) from `seed`,
 * optionally requiring grad. */
static struct tensor *leaf(struct ag_env *e, uint64_t seed, double lo, double hi,
			   bool grad, int ndim, const int64_t *shape)
{
	struct tensor *t = tensor_new(&e->model, DT_F64, ndim, shape);
	gradcheck_fill_uniform(t, seed, lo, hi);
	if (grad)
		tensor_set_requires_grad(t, &e->model);
	return t;
}

#define PARAM(e, seed, ...) leaf((e), (seed), -1.0, 1.0, true, TENSOR_SHAPE(__VA_ARGS__))

/* An i32 tensor in the model arena holding `vals`. */
static struct tensor *ids_tensor(struct ag_env *e, const int32_t *vals, int ndim,
				 const int64_t *shape)
{
	struct tensor *t = tensor_new(&e->model, DT_I32, ndim, shape);
	memcpy(t->data, vals, tensor_nbytes(t));
	return t;
}

/* The logical elements of a host tensor as doubles, in the model arena. */
static double *vals(struct ag_env *e, const struct tensor *t)
{
	double *v = arena_alloc(&e->model, (size_t)tensor_numel(t) * sizeof(double) + 8);
	tensor_read_f64(t, v);
	return v;
}

/* max |got[i] - want[i]| over n elements. */
static double max_diff(const double *got, const double *want, int64_t n)
{
	double m = 0;
	for (int64_t i = 0; i < n; i++) {
		double d = fabs(got[i] - want[i]);
		if (!(d <= m))
			m = isnan(d) ? INFINITY : d;
	}
	return m;
}

static bool has_shape(const struct tensor *t, int ndim, const int64_t *shape)
{
	if (!t || t->ndim != ndim)
		return false;
	for (int d = 0; d < ndim; d++)
		if (t->shape[d] != shape[d])
			return false;
	return true;
}

#define CHECK_SHAPE(t, ...) CHECK(has_shape((t), TENSOR_SHAPE(__VA_ARGS__)))

/* Every check runs twice: on the op as it is, and on f(x) + f(x), where
 * the two uses of each input make the second backward accumulate into a
 * gradient the first one already wrote (a kernel that assigns instead of
 * adding fails there). */
struct twice_case {
	gradcheck_build_fn fn;
	void *user;
};

static struct tensor *build_twice_sum(struct ag_ctx *ctx, struct tensor **in,
				      void *user)
{
	const struct twice_case *c = user;
	struct tensor *a = c->fn(ctx, in, c->user);
	struct tensor *b = c->fn(ctx, in, c->user);
	return ag_add(ctx, a, b);
}

#define CHECK_GRAD_BOTH(name, fn, in, n_in, user, opts)                        \
	do {                                                                   \
		CHECK_GRAD((name), (fn), (in), (n_in), (user), (opts));        \
		struct twice_case tc_ = { (fn), (user) };                      \
		char tn_[192];                                                 \
		snprintf(tn_, sizeof(tn_), "%s, used twice", (name));          \
		CHECK_GRAD(tn_, build_twice_sum, (in), (n_in), &tc_, (opts));  \
	} while (0)

/* ---- matmul ---- */

struct mm_case {
	bool ta, tb;
};

static struct tensor *build_matmul(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	const struct mm_case *c = user;
	return ag_matmul(ctx, in[0], in[1], c->ta, c->tb);
}

/* Naive op(a) @ op(b) with b optionally shared (2-D) across the batch. */
static void matmul_ref(const double *a, const double *b, double *out,
		       int64_t nb, int64_t m, int64_t k, int64_t n, bool ta,
		       bool tb, bool b_shared)
{
	for (int64_t z = 0; z < nb; z++) {
		const double *A = a + z * m * k;
		const double *B = b + (b_shared ? 0 : z * k * n);
		for (int64_t i = 0; i < m; i++)
			for (int64_t j = 0; j < n; j++) {
				double s = 0;
				for (int64_t q = 0; q < k; q++)
					s += (ta ? A[q * m + i] : A[i * k + q]) *
					     (tb ? B[j * k + q] : B[q * n + j]);
				out[(z * m + i) * n + j] = s;
			}
	}
}

/* Gradient- and value-checks all four trans combos for batch dims `batch`
 * (nbd of them), M x K times K x N; b is 2-D when b_shared. */
static void check_matmul(const char *label, int nbd, const int64_t *batch,
			 bool b_shared, int64_t M, int64_t K, int64_t N)
{
	for (int combo = 0; combo < 4; combo++) {
		struct mm_case c = { .ta = combo & 1, .tb = combo & 2 };
		struct ag_env e;
		ag_env_init(&e, 0);
		int64_t as[4], bs[4], nb = 1;
		int an = 0, bn = 0;
		for (int d = 0; d < nbd; d++) {
			as[an++] = batch[d];
			nb *= batch[d];
			if (!b_shared)
				bs[bn++] = batch[d];
		}
		as[an++] = c.ta ? K : M;
		as[an++] = c.ta ? M : K;
		bs[bn++] = c.tb ? N : K;
		bs[bn++] = c.tb ? K : N;
		struct tensor *in[2] = {
			leaf(&e, 11 + combo, -1, 1, true, an, as),
			leaf(&e, 23 + combo, -1, 1, true, bn, bs),
		};
		char name[96];
		snprintf(name, sizeof(name), "matmul %s trans_a=%d trans_b=%d",
			 label, c.ta, c.tb);

		struct tensor *out = build_matmul(&e.ctx, in, &c);
		REQUIRE(out);
		int64_t os[4];
		for (int d = 0; d < nbd; d++)
			os[d] = batch[d];
		os[nbd] = M;
		os[nbd + 1] = N;
		CHECK(has_shape(out, nbd + 2, os));
		double *want = arena_alloc(&e.model, (size_t)(nb * M * N) * sizeof(double));
		matmul_ref(vals(&e, in[0]), vals(&e, in[1]), want, nb, M, K, N,
			   c.ta, c.tb, b_shared);
		double d = max_diff(vals(&e, out), want, nb * M * N);
		if (!(d <= 1e-12))
			test_fail_at(__FILE__, __LINE__, "%s: forward off by %g", name, d);
		ag_ctx_reset(&e.ctx);

		CHECK_GRAD_BOTH(name, build_matmul, in, 2, &c, NULL);
		ag_env_free(&e);
	}
}

TEST(gradcheck_matmul_2d)
{
	check_matmul("2-D", 0, NULL, false, 5, 7, 3);
}

TEST(gradcheck_matmul_batched_3d)
{
	check_matmul("3-D", 1, (const int64_t[]){ 3 }, false, 5, 7, 11);
}

TEST(gradcheck_matmul_batched_4d)
{
	check_matmul("4-D", 2, (const int64_t[]){ 2, 3 }, false, 5, 3, 7);
}

TEST(gradcheck_matmul_b_2d_broadcast)
{
	check_matmul("3-D x 2-D", 1, (const int64_t[]){ 3 }, true, 5, 7, 11);
	check_matmul("4-D x 2-D", 2, (const int64_t[]){ 2, 3 }, true, 5, 7, 3);
}

/* ---- linear ---- */

static struct tensor *build_linear(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	bool has_bias = *(const bool *)user;
	return ag_linear(ctx, in[0], in[1], has_bias ? in[2] : NULL);
}

static void check_linear(bool has_bias, int xnd, const int64_t *xs)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	int64_t in_f = xs[xnd - 1], out_f = 7, rows = 1;
	for (int d = 0; d < xnd - 1; d++)
		rows *= xs[d];
	struct tensor *in[3] = {
		leaf(&e, 1, -1, 1, true, xnd, xs),
		leaf(&e, 2, -1, 1, true, TENSOR_SHAPE(out_f, in_f)),
		has_bias ? leaf(&e, 3, -1, 1, true, TENSOR_SHAPE(out_f)) : NULL,
	};
	struct tensor *out = build_linear(&e.ctx, in, &has_bias);
	REQUIRE(out);
	CHECK(out->ndim == xnd && out->shape[xnd - 1] == out_f);
	double *x = vals(&e, in[0]), *w = vals(&e, in[1]), *o = vals(&e, out);
	double *b = has_bias ? vals(&e, in[2]) : NULL, worst = 0;
	for (int64_t r = 0; r < rows; r++)
		for (int64_t j = 0; j < out_f; j++) {
			double s = b ? b[j] : 0;
			for (int64_t q = 0; q < in_f; q++)
				s += x[r * in_f + q] * w[j * in_f + q];
			worst = fmax(worst, fabs(o[r * out_f + j] - s));
		}
	CHECK(worst <= 1e-12);
	ag_ctx_reset(&e.ctx);
	CHECK_GRAD_BOTH(has_bias ? "linear with bias" : "linear without bias",
		   build_linear, in, has_bias ? 3 : 2, &has_bias, NULL);
	ag_env_free(&e);
}

TEST(gradcheck_linear)
{
	check_linear(true, TENSOR_SHAPE(2, 3, 5));
	check_linear(false, TENSOR_SHAPE(2, 3, 5));
	check_linear(true, TENSOR_SHAPE(11, 5));
}

/* ---- add, mul, broadcasting ---- */

static struct tensor *build_add(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	(void)user;
	return ag_add(ctx, in[0], in[1]);
}

static struct tensor *build_mul(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	(void)user;
	return ag_mul(ctx, in[0], in[1]);
}

/* Flat index into `t` of output element `idx` (dims aligned at the end,
 * dims of 1 stretched). */
static int64_t bcast_index(const struct tensor *t, int ondim, const int64_t *idx)
{
	int64_t i = 0;
	for (int d = 0; d < t->ndim; d++) {
		int od = ondim - t->ndim + d;
		i = i * t->shape[d] + (t->shape[d] == 1 ? 0 : idx[od]);
	}
	return i;
}

static void check_binary(bool is_mul, int a_nd, const int64_t *as, int bnd,
			 const int64_t *bs, int ond, const int64_t *os)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *in[2] = {
		leaf(&e, 5, -1, 1, true, a_nd, as),
		leaf(&e, 6, -1, 1, true, bnd, bs),
	};
	char name[128], d0[64], d1[64];
	snprintf(name, sizeof(name), "%s %s %s", is_mul ? "mul" : "add",
		 tensor_describe(in[0], d0, sizeof(d0)),
		 tensor_describe(in[1], d1, sizeof(d1)));
	gradcheck_build_fn fn = is_mul ? build_mul : build_add;
	struct tensor *out = fn(&e.ctx, in, NULL);
	REQUIRE(out);
	if (!has_shape(out, ond, os))
		test_fail_at(__FILE__, __LINE__, "%s: wrong result shape %s", name,
			     tensor_describe(out, d0, sizeof(d0)));
	double *a = vals(&e, in[0]), *b = vals(&e, in[1]), *o = vals(&e, out);
	int64_t n = tensor_numel(out), idx[4];
	double worst = 0;
	for (int64_t f = 0; f < n; f++) {
		int64_t r = f;
		for (int d = ond - 1; d >= 0; d--) {
			idx[d] = r % os[d];
			r /= os[d];
		}
		double x = a[bcast_index(in[0], ond, idx)];
		double y = b[bcast_index(in[1], ond, idx)];
		worst = fmax(worst, fabs(o[f] - (is_mul ? x * y : x + y)));
	}
	if (!(worst <= 1e-15))
		test_fail_at(__FILE__, __LINE__, "%s: forward off by %g", name, worst);
	ag_ctx_reset(&e.ctx);
	CHECK_GRAD_BOTH(name, fn, in, 2, NULL, NULL);
	ag_env_free(&e);
}

TEST(gradcheck_add_mul_same_shape)
{
	check_binary(false, TENSOR_SHAPE(3, 5, 7), TENSOR_SHAPE(3, 5, 7), TENSOR_SHAPE(3, 5, 7));
	check_binary(true, TENSOR_SHAPE(3, 5, 7), TENSOR_SHAPE(3, 5, 7), TENSOR_SHAPE(3, 5, 7));
	check_binary(true, TENSOR_SHAPE(2, 3, 5, 7), TENSOR_SHAPE(2, 3, 5, 7), TENSOR_SHAPE(2, 3, 5, 7));
}

TEST(gradcheck_add_mul_broadcast)
{
	check_binary(false, TENSOR_SHAPE(3, 5, 7), TENSOR_SHAPE(7), TENSOR_SHAPE(3, 5, 7));
	check_binary(false, TENSOR_SHAPE(3, 5, 7), TENSOR_SHAPE(5, 1), TENSOR_SHAPE(3, 5, 7));
	check_binary(true, TENSOR_SHAPE(3, 1, 7), TENSOR_SHAPE(1, 5, 1), TENSOR_SHAPE(3, 5, 7));
	check_binary(false, TENSOR_SHAPE(3, 1, 7), TENSOR_SHAPE(1, 5, 1), TENSOR_SHAPE(3, 5, 7));
	check_binary(true, TENSOR_SHAPE(3, 5, 7), TENSOR_SHAPE(7), TENSOR_SHAPE(3, 5, 7));
	/* the smaller operand first */
	check_binary(true, TENSOR_SHAPE(5, 1), TENSOR_SHAPE(3, 5, 7), TENSOR_SHAPE(3, 5, 7));
	check_binary(false, TENSOR_SHAPE(7), TENSOR_SHAPE(2, 3, 5, 7), TENSOR_SHAPE(2, 3, 5, 7));
}

/* ---- a value used twice ---- */

static struct tensor *build_twice(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	bool is_mul = *(const bool *)user;
	return is_mul ? ag_mul(ctx, in[0], in[0]) : ag_add(ctx, in[0], in[0]);
}

TEST(gradcheck_value_used_twice)
{
	for (int m = 0; m < 2; m++) {
		bool is_mul = m;
		struct ag_env e;
		ag_env_init(&e, 0);
		struct tensor *x = PARAM(&e, 7, 3, 5, 7);
		struct tensor *in[1] = { x };
		CHECK_GRAD_BOTH(is_mul ? "mul(x, x)" : "add(x, x)", build_twice, in, 1,
			   &is_mul, NULL);

		/* sum(x * x) -> 2x, sum(x + x) -> 2, exactly */
		tensor_fill(x->grad, 0);
		struct tensor *y = build_twice(&e.ctx, in, &is_mul);
		struct tensor *loss = ag_sum(&e.ctx, y, AG_DIM_ALL);
		REQUIRE(loss);
		REQUIRE(ag_backward(&e.ctx, loss) == 0);
		double *g = vals(&e, x->grad), *xv = vals(&e, x), worst = 0;
		for (int64_t i = 0; i < tensor_numel(x); i++)
			worst = fmax(worst, fabs(g[i] - (is_mul ? 2 * xv[i] : 2.0)));
		CHECK(worst <= 1e-15);
		ag_env_free(&e);
	}
}

/* ---- scale ---- */

static struct tensor *build_scale(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	return ag_scale(ctx, in[0], *(const double *)user);
}

TEST(gradcheck_scale)
{
	const double alphas[] = { -1.7, 0.3, 0.0 };
	for (int k = 0; k < 3; k++) {
		struct ag_env e;
		ag_env_init(&e, 0);
		struct tensor *in[1] = { PARAM(&e, 8, 3, 5, 7) };
		double alpha = alphas[k];
		struct tensor *out = build_scale(&e.ctx, in, &alpha);
		REQUIRE(out);
		double *x = vals(&e, in[0]), *o = vals(&e, out), worst = 0;
		for (int i = 0; i < 105; i++)
			worst = fmax(worst, fabs(o[i] - alpha * x[i]));
		CHECK(worst <= 1e-15);
		ag_ctx_reset(&e.ctx);
		CHECK_GRAD_BOTH("scale", build_scale, in, 1, &alpha, NULL);
		ag_env_free(&e);
	}
}

/* ---- sum, mean ---- */

struct reduce_case {
	bool mean;
	int dim;
};

static struct tensor *build_reduce(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	const struct reduce_case *c = user;
	return c->mean ? ag_mean(ctx, in[0], c->dim) : ag_sum(ctx, in[0], c->dim);
}

TEST(gradcheck_sum_mean)
{
	const int dims[] = { AG_DIM_ALL, 0, 1, 2, -1, -2 };
	for (int m = 0; m < 2; m++)
		for (int k = 0; k < 6; k++) {
			struct reduce_case c = { .mean = m, .dim = dims[k] };
			struct ag_env e;
			ag_env_init(&e, 0);
			struct tensor *in[1] = { PARAM(&e, 9 + k, 3, 5, 7) };
			char name[64];
			snprintf(name, sizeof(name), "%s dim %d", m ? "mean" : "sum", c.dim);
			struct tensor *out = build_reduce(&e.ctx, in, &c);
			REQUIRE(out);

			/* forward against a naive reduction */
			const int64_t shp[3] = { 3, 5, 7 };
			int rd = c.dim == AG_DIM_ALL ? -1 : (c.dim + 3) % 3;
			double *x = vals(&e, in[0]), *o = vals(&e, out);
			double want[105] = { 0 };
			int64_t cnt = rd < 0 ? 105 : shp[rd];
			for (int64_t i = 0; i < 3; i++)
				for (int64_t j = 0; j < 5; j++)
					for (int64_t l = 0; l < 7; l++) {
						int64_t oi;
						if (rd < 0)
							oi = 0;
						else if (rd == 0)
							oi = j * 7 + l;
						else if (rd == 1)
							oi = i * 7 + l;
						else
							oi = i * 5 + j;
						want[oi] += x[(i * 5 + j) * 7 + l] / (m ? (double)cnt : 1.0);
					}
			if (rd < 0) {
				CHECK(out->ndim == 0 && tensor_numel(out) == 1);
			} else {
				CHECK(out->ndim == 2 && tensor_numel(out) == 105 / cnt);
			}
			double d = max_diff(o, want, tensor_numel(out));
			if (!(d <= 1e-13))
				test_fail_at(__FILE__, __LINE__, "%s: forward off by %g", name, d);
			ag_ctx_reset(&e.ctx);
			CHECK_GRAD_BOTH(name, build_reduce, in, 1, &c, NULL);
			ag_env_free(&e);
		}
}

/* ---- views: view, reshape, permute, transpose, slice, contiguous ---- */

enum view_kind {
	VK_VIEW,          /* (3,5,7) -> (15,7) */
	VK_VIEW_INFER,    /* (3,5,7) -> (5,-1,3) */
	VK_RESHAPE_T,     /* transpose(0,2) then reshape (7,15): a copy */
	VK_PERMUTE,       /* (2,3,5,7) perm {2,0,3,1} -> (5,2,7,3) */
	VK_TRANSPOSE,     /* (3,5,7) dims 0,2 -> (7,5,3) */
	VK_CONTIGUOUS,    /* contiguous(permute (3,5,7) {1,2,0}) */
	VK_SLICE_MID,     /* (5,7,3) dim 1 [2,5) then gelu */
	VK_SLICE_FIRST,   /* (5,7,3) dim 0 [1,4) then mul by itself */
	VK_SLICE_LAST,    /* (5,7,3) dim -1 [1,2) then scale */
};

static struct tensor *build_view(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	struct tensor *x = in[0];
	switch (*(const enum view_kind *)user) {
	case VK_VIEW:
		return ag_view(ctx, x, TENSOR_SHAPE(15, 7));
	case VK_VIEW_INFER:
		return ag_view(ctx, x, TENSOR_SHAPE(5, -1, 3));
	case VK_RESHAPE_T:
		return ag_reshape(ctx, ag_transpose(ctx, x, 0, 2), TENSOR_SHAPE(7, 15));
	case VK_PERMUTE:
		return ag_permute(ctx, x, (const int[]){ 2, 0, 3, 1 });
	case VK_TRANSPOSE:
		return ag_transpose(ctx, x, 0, 2);
	case VK_CONTIGUOUS:
		return ag_contiguous(ctx, ag_permute(ctx, x, (const int[]){ 1, 2, 0 }));
	case VK_SLICE_MID:
		return ag_gelu(ctx, ag_slice(ctx, x, 1, 2, 3));
	case VK_SLICE_FIRST: {
		struct tensor *s = ag_slice(ctx, x, 0, 1, 3);
		return ag_mul(ctx, s, s);
	}
	case VK_SLICE_LAST:
		return ag_scale(ctx, ag_slice(ctx, x, -1, 1, 1), 2.5);
	}
	return NULL;
}

static void check_view(enum view_kind k, const char *name, int xnd,
		       const int64_t *xs, int ond, const int64_t *os)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *in[1] = { leaf(&e, 30 + k, -1, 1, true, xnd, xs) };
	struct tensor *out = build_view(&e.ctx, in, &k);
	REQUIRE(out);
	char d[64];
	if (!has_shape(out, ond, os))
		test_fail_at(__FILE__, __LINE__, "%s: result shape %s", name,
			     tensor_describe(out, d, sizeof(d)));
	ag_ctx_reset(&e.ctx);
	CHECK_GRAD_BOTH(name, build_view, in, 1, &k, NULL);
	ag_env_free(&e);
}

TEST(gradcheck_view_reshape)
{
	check_view(VK_VIEW, "view", TENSOR_SHAPE(3, 5, 7), TENSOR_SHAPE(15, 7));
	check_view(VK_VIEW_INFER, "view -1", TENSOR_SHAPE(3, 5, 7), TENSOR_SHAPE(5, 7, 3));
	check_view(VK_RESHAPE_T, "reshape of a transpose", TENSOR_SHAPE(3, 5, 7),
		   TENSOR_SHAPE(7, 15));
}

TEST(view_values_share_storage)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *x = PARAM(&e, 40, 3, 5, 7);
	struct tensor *v = ag_view(&e.ctx, x, TENSOR_SHAPE(15, 7));
	REQUIRE(v);
	CHECK(v->data == x->data);
	/* reshape of a transposed tensor copies, in the transposed order */
	struct tensor *r = ag_reshape(&e.ctx, ag_transpose(&e.ctx, x, 0, 2),
				      TENSOR_SHAPE(7, 15));
	REQUIRE(r);
	CHECK(tensor_is_contiguous(r));
	double *xv = vals(&e, x), *rv = vals(&e, r), worst = 0;
	for (int l = 0; l < 7; l++)
		for (int j = 0; j < 5; j++)
			for (int i = 0; i < 3; i++)
				worst = fmax(worst, fabs(rv[l * 15 + j * 3 + i] -
							 xv[(i * 5 + j) * 7 + l]));
	CHECK(worst == 0);
	ag_env_free(&e);
}

/* The gradient of a view of a non-leaf is its input's gradient buffer seen
 * in the view's shape (no buffer and no copy of its own); with two
 * consumers of the view and one of the input itself, every contribution
 * lands: d/dy of sum(v * a) + sum(v * b) + sum(y * c) = a + b + c
 * (element for element, in y's order). */
TEST(view_gradient_shares_its_input_gradient)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *x = PARAM(&e, 41, 3, 4, 5);
	struct tensor *a = leaf(&e, 42, -1.0, 1.0, false, TENSOR_SHAPE(12, 5));
	struct tensor *b = leaf(&e, 43, -1.0, 1.0, false, TENSOR_SHAPE(12, 5));
	struct tensor *c = leaf(&e, 44, -1.0, 1.0, false, TENSOR_SHAPE(3, 4, 5));
	struct tensor *y = ag_scale(&e.ctx, x, 2.0);                /* a non-leaf */
	struct tensor *v = ag_view(&e.ctx, y, TENSOR_SHAPE(12, 5));
	struct tensor *l1 = ag_sum(&e.ctx, ag_mul(&e.ctx, v, a), AG_DIM_ALL);
	struct tensor *l2 = ag_sum(&e.ctx, ag_mul(&e.ctx, v, b), AG_DIM_ALL);
	struct tensor *l3 = ag_sum(&e.ctx, ag_mul(&e.ctx, y, c), AG_DIM_ALL);
	struct tensor *loss = ag_add(&e.ctx, ag_add(&e.ctx, l1, l2), l3);
	REQUIRE(loss && ag_backward(&e.ctx, loss) == 0);
	REQUIRE(v->grad && y->grad);
	CHECK(v->grad->data == y->grad->data);
	CHECK(tensor_is_contiguous(v->grad) && v->grad->ndim == 2 && v->grad->shape[0] == 12);
	double *gx = vals(&e, x->grad), *av = vals(&e, a), *bv = vals(&e, b), *cv = vals(&e, c);
	double worst = 0;
	for (int i = 0; i < 60; i++) /* dx = 2 (a + b + c) */
		worst = fmax(worst, fabs(gx[i] - 2.0 * (av[i] + bv[i] + cv[i])));
	CHECK(worst < 1e-12);
	ag_env_free(&e);
}

TEST(gradcheck_permute_transpose)
{
	check_view(VK_PERMUTE, "permute", TENSOR_SHAPE(2, 3, 5, 7), TENSOR_SHAPE(5, 2, 7, 3));
	check_view(VK_TRANSPOSE, "transpose", TENSOR_SHAPE(3, 5, 7), TENSOR_SHAPE(7, 5, 3));

	/* permute is a view: element [a,b,c,d] of the result is x[b,d,a,c] */
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *x = PARAM(&e, 41, 2, 3, 5, 7);
	struct tensor *p = ag_permute(&e.ctx, x, (const int[]){ 2, 0, 3, 1 });
	REQUIRE(p);
	CHECK(p->data == x->data);
	double *xv = vals(&e, x), *pv = vals(&e, p), worst = 0;
	for (int a = 0; a < 5; a++)
		for (int b = 0; b < 2; b++)
			for (int c = 0; c < 7; c++)
				for (int d = 0; d < 3; d++)
					worst = fmax(worst, fabs(pv[((a * 2 + b) * 7 + c) * 3 + d] -
								 xv[((b * 3 + d) * 5 + a) * 7 + c]));
	CHECK(worst == 0);
	ag_env_free(&e);
}

TEST(gradcheck_contiguous)
{
	check_view(VK_CONTIGUOUS, "contiguous(permute)", TENSOR_SHAPE(3, 5, 7),
		   TENSOR_SHAPE(5, 7, 3));

	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *x = PARAM(&e, 42, 3, 5, 7);
	struct tensor *p = ag_permute(&e.ctx, x, (const int[]){ 1, 2, 0 });
	struct tensor *c = ag_contiguous(&e.ctx, p);
	REQUIRE(c);
	CHECK(tensor_is_contiguous(c));
	CHECK(c->data != x->data);
	double *pv = vals(&e, p), *cv = vals(&e, c);
	CHECK(max_diff(cv, pv, 105) == 0);
	int64_t n = e.ctx.n_nodes;
	CHECK(ag_contiguous(&e.ctx, x) == x); /* already contiguous: x itself */
	CHECK(e.ctx.n_nodes == n);
	ag_env_free(&e);
}

TEST(gradcheck_slice)
{
	check_view(VK_SLICE_MID, "gelu(slice dim 1)", TENSOR_SHAPE(5, 7, 3),
		   TENSOR_SHAPE(5, 3, 3));
	check_view(VK_SLICE_FIRST, "slice dim 0 squared", TENSOR_SHAPE(5, 7, 3),
		   TENSOR_SHAPE(3, 7, 3));
	check_view(VK_SLICE_LAST, "scale(slice dim -1)", TENSOR_SHAPE(5, 7, 3),
		   TENSOR_SHAPE(5, 7, 1));

	/* only the sliced part of the input gets gradient, exactly 0 elsewhere */
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *x = PARAM(&e, 43, 5, 7, 3);
	enum view_kind k = VK_SLICE_MID;
	struct tensor *y = build_view(&e.ctx, &x, &k);
	REQUIRE(y);
	CHECK(tensor_numel(y) == 45);
	REQUIRE(ag_backward(&e.ctx, ag_sum(&e.ctx, y, AG_DIM_ALL)) == 0);
	double *g = vals(&e, x->grad);
	int inside_nonzero = 0, outside_nonzero = 0;
	for (int i = 0; i < 5; i++)
		for (int j = 0; j < 7; j++)
			for (int l = 0; l < 3; l++) {
				bool in = j >= 2 && j < 5;
				double v = g[(i * 7 + j) * 3 + l];
				if (in && v != 0)
					inside_nonzero++;
				if (!in && v != 0)
					outside_nonzero++;
			}
	CHECK(inside_nonzero == 45);
	CHECK(outside_nonzero == 0);
	ag_env_free(&e);
}

/* ---- cast ---- */

static struct tensor *build_cast_roundtrip(struct ag_ctx *ctx, struct tensor **in,
					   void *user)
{
	(void)user;
	return ag_cast(ctx, ag_cast(ctx, in[0], DT_F32), DT_F64);
}

TEST(gradcheck_cast)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *x = PARAM(&e, 50, 3, 5, 7);
	struct tensor *y = ag_cast(&e.ctx, x, DT_F32);
	REQUIRE(y);
	CHECK(y->dtype == DT_F32 && tensor_same_shape(x, y));
	struct tensor *z = ag_cast(&e.ctx, y, DT_F64);
	REQUIRE(z);
	CHECK(z->dtype == DT_F64 && tensor_same_shape(x, z));
	double *xv = vals(&e, x), *zv = vals(&e, z);
	int bad = 0;
	for (int i = 0; i < 105; i++)
		if (zv[i] != (double)(float)xv[i] || fabs(zv[i] - xv[i]) > 6e-8 * fabs(xv[i]))
			bad++;
	CHECK(bad == 0);

	/* backward: the gradient R comes back through f32, i.e. (double)(float)R */
	struct tensor *r = tensor_new(&e.step, DT_F64, TENSOR_SHAPE(3, 5, 7));
	gradcheck_fill_uniform(r, 51, -1, 1);
	double *rv = vals(&e, r);
	REQUIRE(ag_backward_from(&e.ctx, z, r) == 0);
	double *g = vals(&e, x->grad);
	bad = 0;
	for (int i = 0; i < 105; i++)
		if (g[i] != (double)(float)rv[i])
			bad++;
	CHECK(bad == 0);

	/* the same dtype: x itself, nothing recorded */
	ag_ctx_reset(&e.ctx);
	CHECK(ag_cast(&e.ctx, x, DT_F64) == x);
	CHECK(e.ctx.n_nodes == 0);

	/* numerically, with a step large against f32 rounding */
	ag_ctx_reset(&e.ctx);
	struct tensor *in[1] = { x };
	struct gradcheck_opts o = { .h = 1e-3, .atol = 1e-4, .rtol = 1e-3, .training = true };
	CHECK_GRAD_BOTH("cast f64 -> f32 -> f64", build_cast_roundtrip, in, 1, NULL, &o);
	ag_env_free(&e);
}

TEST(cast_half_types_round_and_pass_gradient_back)
{
	const enum dtype dts[] = { DT_BF16, DT_F16 };
	for (int k = 0; k < 2; k++) {
		struct ag_env e;
		ag_env_init(&e, 0);
		struct tensor *x = tensor_new(&e.model, DT_F32, TENSOR_SHAPE(5, 7));
		gradcheck_fill_uniform(x, 60 + k, -3, 3);
		tensor_set_requires_grad(x, &e.model);
		struct tensor *h = ag_cast(&e.ctx, x, dts[k]);
		REQUIRE(h);
		CHECK(h->dtype == dts[k]);
		const uint16_t *hv = h->data;
		const float *xv = x->data;
		int bad = 0;
		for (int i = 0; i < 35; i++) {
			uint16_t want = dts[k] == DT_BF16 ? f32_to_bf16(xv[i]) : f32_to_f16(xv[i]);
			if (hv[i] != want)
				bad++;
		}
		CHECK(bad == 0);
		struct tensor *back = ag_cast(&e.ctx, h, DT_F32);
		REQUIRE(back);
		struct tensor *r = tensor_new(&e.step, DT_F32, TENSOR_SHAPE(5, 7));
		gradcheck_fill_uniform(r, 62 + k, -1, 1);
		REQUIRE(ag_backward_from(&e.ctx, back, r) == 0);
		const float *g = x->grad->data, *rv = r->data;
		bad = 0;
		for (int i = 0; i < 35; i++) {
			float want = dts[k] == DT_BF16 ? bf16_to_f32(f32_to_bf16(rv[i]))
						       : f16_to_f32(f32_to_f16(rv[i]));
			if (g[i] != want)
				bad++;
		}
		CHECK(bad == 0);
		ag_env_free(&e);
	}
}

/* ---- embedding ---- */

static struct tensor *build_embedding(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	(void)user;
	return ag_embedding(ctx, in[0], in[1]);
}

TEST(gradcheck_embedding)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	/* repeated ids (3, 6 and 1 several times) so rows accumulate; 4, 5 unused */
	const int32_t idv[] = { 3, 1, 3, 0, 6, 6, 6, 2, 3, 1 };
	struct tensor *ids = ids_tensor(&e, idv, TENSOR_SHAPE(2, 5));
	struct tensor *w = PARAM(&e, 70, 7, 5);
	struct tensor *in[2] = { ids, w };
	struct tensor *out = build_embedding(&e.ctx, in, NULL);
	REQUIRE(out);
	CHECK_SHAPE(out, 2, 5, 5);
	double *wv = vals(&e, w), *ov = vals(&e, out), worst = 0;
	for (int t = 0; t < 10; t++)
		for (int c = 0; c < 5; c++)
			worst = fmax(worst, fabs(ov[t * 5 + c] - wv[idv[t] * 5 + c]));
	CHECK(worst == 0);
	ag_ctx_reset(&e.ctx);
	CHECK_GRAD_BOTH("embedding", build_embedding, in, 2, NULL, NULL);

	/* d sum(out) / d w[v] = number of times v occurs */
	tensor_fill(w->grad, 0);
	REQUIRE(ag_backward(&e.ctx, ag_sum(&e.ctx, build_embedding(&e.ctx, in, NULL),
					   AG_DIM_ALL)) == 0);
	const double count[7] = { 1, 2, 1, 3, 0, 0, 3 };
	double *g = vals(&e, w->grad);
	worst = 0;
	for (int v = 0; v < 7; v++)
		for (int c = 0; c < 5; c++)
			worst = fmax(worst, fabs(g[v * 5 + c] - count[v]));
	CHECK(worst == 0);
	ag_env_free(&e);
}

/* ---- layernorm ---- */

static struct tensor *build_layernorm(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	bool has_bias = *(const bool *)user;
	return ag_layernorm(ctx, in[0], in[1], has_bias ? in[2] : NULL, 1e-5);
}

TEST(gradcheck_layernorm)
{
	for (int k = 0; k < 2; k++) {
		bool has_bias = k == 0;
		struct ag_env e;
		ag_env_init(&e, 0);
		struct tensor *in[3] = {
			leaf(&e, 80, -2, 3, true, TENSOR_SHAPE(3, 5, 7)),
			leaf(&e, 81, 0.5, 1.5, true, TENSOR_SHAPE(7)),
			has_bias ? PARAM(&e, 82, 7) : NULL,
		};
		struct tensor *out = build_layernorm(&e.ctx, in, &has_bias);
		REQUIRE(out);
		CHECK_SHAPE(out, 3, 5, 7);
		double *x = vals(&e, in[0]), *w = vals(&e, in[1]), *o = vals(&e, out);
		double *b = has_bias ? vals(&e, in[2]) : NULL, worst = 0;
		for (int r = 0; r < 15; r++) {
			double mu = 0, var = 0;
			for (int c = 0; c < 7; c++)
				mu += x[r * 7 + c] / 7;
			for (int c = 0; c < 7; c++)
				var += (x[r * 7 + c] - mu) * (x[r * 7 + c] - mu) / 7;
			for (int c = 0; c < 7; c++) {
				double y = (x[r * 7 + c] - mu) / sqrt(var + 1e-5) * w[c] +
					   (b ? b[c] : 0);
				worst = fmax(worst, fabs(o[r * 7 + c] - y));
			}
		}
		CHECK(worst <= 1e-12);
		ag_ctx_reset(&e.ctx);
		CHECK_GRAD_BOTH(has_bias ? "layernorm with bias" : "layernorm without bias",
			   build_layernorm, in, has_bias ? 3 : 2, &has_bias, NULL);
		ag_env_free(&e);
	}
}

/* ---- gelu, softmax ---- */

static struct tensor *build_gelu(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	(void)user;
	return ag_gelu(ctx, in[0]);
}

static struct tensor *build_softmax(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	(void)user;
	return ag_softmax(ctx, in[0]);
}

TEST(gradcheck_gelu)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *in[1] = { leaf(&e, 90, -4, 4, true, TENSOR_SHAPE(3, 5, 7)) };
	struct tensor *out = build_gelu(&e.ctx, in, NULL);
	REQUIRE(out);
	double *x = vals(&e, in[0]), *o = vals(&e, out), worst = 0;
	for (int i = 0; i < 105; i++) {
		double v = x[i];
		double y = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
		worst = fmax(worst, fabs(o[i] - y));
	}
	CHECK(worst <= 1e-14);
	ag_ctx_reset(&e.ctx);
	CHECK_GRAD_BOTH("gelu", build_gelu, in, 1, NULL, NULL);
	ag_env_free(&e);
}

TEST(gradcheck_softmax)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *in[1] = { leaf(&e, 91, -3, 3, true, TENSOR_SHAPE(3, 5, 7)) };
	struct tensor *out = build_softmax(&e.ctx, in, NULL);
	REQUIRE(out);
	double *x = vals(&e, in[0]), *o = vals(&e, out), worst = 0;
	for (int r = 0; r < 15; r++) {
		double m = -INFINITY, s = 0;
		for (int c = 0; c < 7; c++)
			m = fmax(m, x[r * 7 + c]);
		for (int c = 0; c < 7; c++)
			s += exp(x[r * 7 + c] - m);
		for (int c = 0; c < 7; c++)
			worst = fmax(worst, fabs(o[r * 7 + c] - exp(x[r * 7 + c] - m) / s));
	}
	CHECK(worst <= 1e-15);
	ag_ctx_reset(&e.ctx);
	CHECK_GRAD_BOTH("softmax", build_softmax, in, 1, NULL, NULL);

	/* large logits must not overflow */
	struct tensor *big = leaf(&e, 92, 700, 800, false, TENSOR_SHAPE(3, 5));
	struct tensor *sb = ag_softmax(&e.ctx, big);
	REQUIRE(sb);
	double *bv = vals(&e, sb);
	for (int r = 0; r < 3; r++) {
		double s = 0;
		for (int c = 0; c < 5; c++)
			s += bv[r * 5 + c];
		CHECK_NEAR(s, 1.0, 1e-12);
	}
	ag_env_free(&e);
}

/* ---- dropout ---- */

static struct tensor *build_dropout(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	ctx->seed = 1234;
	return ag_dropout(ctx, in[0], *(const double *)user);
}

TEST(gradcheck_dropout)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	double p = 0.3;
	struct tensor *in[1] = { PARAM(&e, 100, 3, 5, 7) };
	CHECK_GRAD("dropout p=0.3", build_dropout, in, 1, &p, NULL);
	/* the analytic gradient is the mask / (1 - p) times R: some zeros */
	double *g = vals(&e, in[0]->grad);
	int zeros = 0;
	for (int i = 0; i < 105; i++)
		zeros += g[i] == 0;
	CHECK(zeros > 10 && zeros < 60);
	/* two dropouts of x (two different masks) added */
	struct twice_case tc = { build_dropout, &p };
	CHECK_GRAD("dropout p=0.3, used twice", build_twice_sum, in, 1, &tc, NULL);
	ag_env_free(&e);
}

TEST(dropout_mask_properties)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	const double p = 0.3;
	struct tensor *x = leaf(&e, 101, 0.5, 1.5, false, TENSOR_SHAPE(100, 100));
	double *xv = vals(&e, x);
	e.ctx.seed = 42;
	e.ctx.rng_offset = 1000;

	struct tensor *y1 = ag_dropout(&e.ctx, x, p);
	REQUIRE(y1);
	CHECK(y1 != x);
	CHECK(e.ctx.rng_offset == 1000 + 10000); /* advances by numel */
	double *v1 = vals(&e, y1);
	int kept = 0, bad_value = 0;
	for (int i = 0; i < 10000; i++) {
		if (v1[i] == 0)
			continue;
		kept++;
		if (fabs(v1[i] - xv[i] / (1 - p)) > 1e-15 * fabs(v1[i]))
			bad_value++;
	}
	double frac = kept / 10000.0;
	if (!(fabs(frac - 0.7) < 0.02))
		test_fail_at(__FILE__, __LINE__, "kept fraction %.4f, want ~0.7", frac);
	CHECK(bad_value == 0);

	/* same seed and offset: the same mask */
	e.ctx.rng_offset = 1000;
	double *v2 = vals(&e, ag_dropout(&e.ctx, x, p));
	CHECK(max_diff(v1, v2, 10000) == 0);

	/* the next call (offset moved on): a different mask */
	double *v3 = vals(&e, ag_dropout(&e.ctx, x, p));
	int differ = 0;
	for (int i = 0; i < 10000; i++)
		differ += (v1[i] == 0) != (v3[i] == 0);
	CHECK(differ > 1000);

	/* a different seed at the same offset: a different mask */
	e.ctx.seed = 43;
	e.ctx.rng_offset = 1000;
	double *v4 = vals(&e, ag_dropout(&e.ctx, x, p));
	differ = 0;
	for (int i = 0; i < 10000; i++)
		differ += (v1[i] == 0) != (v4[i] == 0);
	CHECK(differ > 1000);

	/* p == 0 or not training: x itself */
	int64_t nodes = e.ctx.n_nodes;
	CHECK(ag_dropout(&e.ctx, x, 0.0) == x);
	e.ctx.training = false;
	CHECK(ag_dropout(&e.ctx, x, p) == x);
	CHECK(e.ctx.n_nodes == nodes);
	ag_env_free(&e);
}

/* ---- attention ---- */

#define AB 2
#define AH 3
#define AT 5
#define AD 4

struct attn_case {
	bool causal;
	bool use_slopes;
	bool fused;        /* q, k, v are strided views of one qkv leaf */
	const int32_t *mask; /* (AB, AT) or NULL */
};

/* Inputs: fused: in[0] qkv (B, T, 3*H*D); else in[0..2] q, k, v (B,H,T,D).
 * in[3] slopes (H) f64 or NULL, in[4] mask (B, T) i32 or NULL. */
static struct tensor *build_attention(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	const struct attn_case *c = user;
	struct tensor *q = in[0], *k = in[1], *v = in[2];
	if (c->fused) {
		const int perm[4] = { 0, 2, 1, 3 };
		struct tensor *qkv = ag_view(ctx, in[0], TENSOR_SHAPE(AB, AT, AH, 3 * AD));
		q = ag_permute(ctx, ag_slice(ctx, qkv, 3, 0, AD), perm);
		k = ag_permute(ctx, ag_slice(ctx, qkv, 3, AD, AD), perm);
		v = ag_permute(ctx, ag_slice(ctx, qkv, 3, 2 * AD, AD), perm);
	}
	return ag_attention(ctx, q, k, v, &(struct ag_attn_desc){
		.pos_bias = c->use_slopes ? AG_POS_BIAS_ALIBI : AG_POS_BIAS_NONE,
		.slopes = c->use_slopes ? in[3] : NULL, .causal = c->causal,
		.key_mask = c->mask ? in[4] : NULL });
}

/* Naive attention over (B,H,T,D) arrays as documented in autograd.h. */
static void attention_ref(const double *q, const double *k, const double *v,
			  const double *slopes, const int32_t *mask, bool causal,
			  double *out)
{
	double scale = 1.0 / sqrt((double)AD);
	for (int b = 0; b < AB; b++)
		for (int h = 0; h < AH; h++)
			for (int i = 0; i < AT; i++) {
				double s[AT], m = -INFINITY, z = 0;
				bool ok[AT];
				int kept = 0;
				for (int j = 0; j < AT; j++) {
					int pos = j;
					if (mask) {
						kept += mask[b * AT + j] != 0;
						pos = kept - 1;
					}
					ok[j] = !(causal && j > i) && !(mask && !mask[b * AT + j]);
					const double *qi = q + ((b * AH + h) * AT + i) * AD;
					const double *kj = k + ((b * AH + h) * AT + j) * AD;
					double dot = 0;
					for (int d = 0; d < AD; d++)
						dot += qi[d] * kj[d];
					s[j] = scale * dot + (slopes ? slopes[h] * pos : 0);
					if (ok[j])
						m = fmax(m, s[j]);
				}
				double *o = out + ((b * AH + h) * AT + i) * AD;
				for (int d = 0; d < AD; d++)
					o[d] = 0;
				if (m == -INFINITY)
					continue; /* every key masked: zeros */
				for (int j = 0; j < AT; j++)
					z += ok[j] ? exp(s[j] - m) : 0;
				for (int j = 0; j < AT; j++) {
					if (!ok[j])
						continue;
					double pj = exp(s[j] - m) / z;
					const double *vj = v + ((b * AH + h) * AT + j) * AD;
					for (int d = 0; d < AD; d++)
						o[d] += pj * vj[d];
				}
			}
}

/* Left-padded row (two fully masked causal query rows) and a hole. */
static const int32_t mask_causal[AB * AT] = { 1, 1, 1, 0, 1, 0, 0, 1, 1, 1 };
/* The second batch entry is padding throughout: every query row masked. */
static const int32_t mask_full[AB * AT] = { 1, 1, 0, 1, 1, 0, 0, 0, 0, 0 };

static void check_attention(const char *name, struct attn_case c)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	double sl[AH];
	bloom_alibi_slopes(AH, sl);
	struct tensor *slopes = tensor_new(&e.model, DT_F64, TENSOR_SHAPE(AH));
	tensor_write_f64(slopes, sl);
	struct tensor *mask = c.mask ? ids_tensor(&e, c.mask, TENSOR_SHAPE(AB, AT)) : NULL;
	struct tensor *in[5] = { NULL, NULL, NULL, slopes, mask };
	int n_in = 5;
	if (c.fused) {
		in[0] = leaf(&e, 110, -1.5, 1.5, true, TENSOR_SHAPE(AB, AT, 3 * AH * AD));
	} else {
		for (int i = 0; i < 3; i++)
			in[i] = leaf(&e, 111 + i, -1.5, 1.5, true,
				     TENSOR_SHAPE(AB, AH, AT, AD));
	}

	/* forward against the naive reference (q, k, v unpacked here) */
	struct tensor *out = build_attention(&e.ctx, in, &c);
	REQUIRE(out);
	CHECK_SHAPE(out, AB, AH, AT, AD);
	CHECK(tensor_is_contiguous(out));
	enum { N = AB * AH * AT * AD };
	double q[N], k[N], v[N], want[N];
	if (c.fused) {
		double *f = vals(&e, in[0]);
		for (int b = 0; b < AB; b++)
			for (int t = 0; t < AT; t++)
				for (int h = 0; h < AH; h++)
					for (int d = 0; d < AD; d++) {
						const double *row = f + ((b * AT + t) * AH + h) * 3 * AD;
						int o = ((b * AH + h) * AT + t) * AD + d;
						q[o] = row[d];
						k[o] = row[AD + d];
						v[o] = row[2 * AD + d];
					}
	} else {
		tensor_read_f64(in[0], q);
		tensor_read_f64(in[1], k);
		tensor_read_f64(in[2], v);
	}
	attention_ref(q, k, v, c.use_slopes ? sl : NULL, c.mask, c.causal, want);
	double d = max_diff(vals(&e, out), want, N);
	if (!(d <= 1e-12))
		test_fail_at(__FILE__, __LINE__, "%s: forward off by %g", name, d);
	ag_ctx_reset(&e.ctx);
	CHECK_GRAD_BOTH(name, build_attention, in, n_in, &c, NULL);
	ag_env_free(&e);
}

TEST(gradcheck_attention_alibi_causal_mask_fused_qkv)
{
	check_attention("attention fused qkv, alibi, causal, padding mask",
			(struct attn_case){ .causal = true, .use_slopes = true,
					    .fused = true, .mask = mask_causal });
}

TEST(gradcheck_attention_variants)
{
	check_attention("attention alibi causal no mask",
			(struct attn_case){ .causal = true, .use_slopes = true });
	check_attention("attention fused qkv, alibi, causal, no mask",
			(struct attn_case){ .causal = true, .use_slopes = true, .fused = true });
	check_attention("attention non-causal, alibi, mask with a padded sequence",
			(struct attn_case){ .use_slopes = true, .mask = mask_full });
	check_attention("attention non-causal, no alibi, no mask",
			(struct attn_case){ .fused = true });
	check_attention("attention causal, no alibi, mask",
			(struct attn_case){ .causal = true, .mask = mask_causal });
}

/* Attention with dropout on the probabilities: the mask is a function of
 * (seed, offset), so the finite differences see the same mask. */
static struct tensor *build_attention_dropout(struct ag_ctx *ctx, struct tensor **in,
					      void *user)
{
	ctx->seed = 77;
	return ag_attention(ctx, in[0], in[1], in[2], &(struct ag_attn_desc){
		.pos_bias = AG_POS_BIAS_ALIBI, .slopes = in[3], .causal = true,
		.key_mask = in[4], .dropout = *(const double *)user });
}

TEST(gradcheck_attention_dropout)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	double sl[AH], p = 0.25;
	bloom_alibi_slopes(AH, sl);
	struct tensor *slopes = tensor_new(&e.model, DT_F64, TENSOR_SHAPE(AH));
	tensor_write_f64(slopes, sl);
	struct tensor *in[5] = { NULL, NULL, NULL, slopes,
				 ids_tensor(&e, mask_causal, TENSOR_SHAPE(AB, AT)) };
	for (int i = 0; i < 3; i++)
		in[i] = leaf(&e, 131 + i, -1.5, 1.5, true, TENSOR_SHAPE(AB, AH, AT, AD));
	struct gradcheck_opts opts = { .training = true };
	CHECK_GRAD("attention with dropout p=0.25", build_attention_dropout, in, 5, &p, &opts);

	/* dropout changes the output in training and is off otherwise */
	enum { N = AB * AH * AT * AD };
	double plain[N], dropped[N], eval[N];
	struct tensor *o = ag_attention(&e.ctx, in[0], in[1], in[2], &(struct ag_attn_desc){
		.pos_bias = AG_POS_BIAS_ALIBI, .slopes = slopes, .causal = true, .key_mask = in[4] });
	REQUIRE(o);
	tensor_read_f64(o, plain);
	o = build_attention_dropout(&e.ctx, in, &p);
	REQUIRE(o);
	tensor_read_f64(o, dropped);
	e.ctx.training = false;
	o = build_attention_dropout(&e.ctx, in, &p);
	REQUIRE(o);
	tensor_read_f64(o, eval);
	CHECK(max_diff(plain, dropped, N) > 1e-3);
	CHECK(max_diff(plain, eval, N) == 0);
	ag_env_free(&e);
}

/* Grouped-query attention: 4 query heads over 2 key/value heads, with
 * ALiBi, the causal rule, a padding mask and dropout. */
static struct tensor *build_attention_gqa(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	ctx->seed = 91;
	return ag_attention(ctx, in[0], in[1], in[2], &(struct ag_attn_desc){
		.pos_bias = AG_POS_BIAS_ALIBI, .slopes = in[3], .causal = true,
		.key_mask = in[4], .dropout = *(const double *)user });
}

TEST(gradcheck_attention_grouped_kv)
{
	enum { H = 4, HKV = 2, G = H / HKV, KV = AB * HKV * AT * AD, N = AB * H * AT * AD };
	struct ag_env e;
	ag_env_init(&e, 0);
	double sl[H];
	bloom_alibi_slopes(H, sl);
	struct tensor *slopes = tensor_new(&e.model, DT_F64, TENSOR_SHAPE(H));
	tensor_write_f64(slopes, sl);
	struct tensor *in[5] = {
		leaf(&e, 141, -1.5, 1.5, true, TENSOR_SHAPE(AB, H, AT, AD)),
		leaf(&e, 142, -1.5, 1.5, true, TENSOR_SHAPE(AB, HKV, AT, AD)),
		leaf(&e, 143, -1.5, 1.5, true, TENSOR_SHAPE(AB, HKV, AT, AD)),
		slopes, ids_tensor(&e, mask_causal, TENSOR_SHAPE(AB, AT)),
	};
	const double ps[] = { 0.0, 0.25 };
	for (int i = 0; i < 2; i++) {
		struct gradcheck_opts opts = { .training = true };
		char name[64];
		snprintf(name, sizeof(name), "attention, 4 heads over 2 kv heads, p=%g", ps[i]);
		CHECK_GRAD_BOTH(name, build_attention_gqa, in, 5, (void *)&ps[i], &opts);
	}

	/* the reference: every key/value head repeated for its G query heads,
	 * as multi-head attention; its k, v gradients summed over each group */
	double kv[2][KV], rep[2][N];
	for (int t = 0; t < 2; t++) {
		tensor_read_f64(in[1 + t], kv[t]);
		for (int64_t b = 0; b < AB; b++)
			for (int64_t h = 0; h < H; h++)
				memcpy(rep[t] + ((b * H + h) * AT) * AD,
				       kv[t] + ((b * HKV + h / G) * AT) * AD, AT * AD * sizeof(double));
	}
	struct tensor *rin[5] = { in[0], NULL, NULL, slopes, in[4] };
	for (int t = 0; t < 2; t++) {
		rin[1 + t] = leaf(&e, 1, 0, 1, true, TENSOR_SHAPE(AB, H, AT, AD));
		tensor_write_f64(rin[1 + t], rep[t]);
	}
	for (int i = 0; i < 2; i++) {
		double got[N], want[N], gk[2][KV], wk[2][N];
		struct tensor *w = leaf(&e, 7, -1, 1, false, TENSOR_SHAPE(AB, H, AT, AD));
		struct tensor **sets[2] = { in, rin };
		double *outs[2] = { got, want };
		for (int s = 0; s < 2; s++) {
			for (int t = 0; t < 3; t++)
				memset(sets[s][t]->grad->data, 0, tensor_nbytes(sets[s][t]->grad));
			ag_ctx_reset(&e.ctx);
			e.ctx.training = true;
			e.ctx.rng_offset = 0; /* the same dropout mask on both */
			struct tensor *o = build_attention_gqa(&e.ctx, sets[s], (void *)&ps[i]);
			REQUIRE(o);
			tensor_read_f64(o, outs[s]);
			REQUIRE(ag_backward_from(&e.ctx, o, w) == 0);
		}
		CHECK(max_diff(got, want, N) <= 1e-12);
		for (int t = 0; t < 2; t++) {
			tensor_read_f64(in[1 + t]->grad, gk[t]);
			tensor_read_f64(rin[1 + t]->grad, wk[t]);
			double sum[KV] = { 0 };
			for (int64_t b = 0; b < AB; b++)
				for (int64_t h = 0; h < H; h++)
					for (int64_t j = 0; j < AT * AD; j++)
						sum[((b * HKV + h / G) * AT) * AD + j] +=
							wk[t][((b * H + h) * AT) * AD + j];
			CHECK(max_diff(gk[t], sum, KV) <= 1e-12);
		}
	}
	/* H must be a multiple of Hkv */
	ag_ctx_reset(&e.ctx);
	struct tensor *k3 = leaf(&e, 5, -1, 1, false, TENSOR_SHAPE(AB, 3, AT, AD));
	CHECK(!ag_attention(&e.ctx, in[0], k3, k3, &(struct ag_attn_desc){ .causal = true }));
	CHECK(strstr(e.ctx.err.msg, "multiple of Hkv") != NULL);
	/* ALiBi without slopes, slopes without ALiBi */
	ag_ctx_reset(&e.ctx);
	CHECK(!ag_attention(&e.ctx, in[0], in[1], in[2],
			    &(struct ag_attn_desc){ .pos_bias = AG_POS_BIAS_ALIBI }));
	CHECK(strstr(e.ctx.err.msg, "ALiBi needs slopes") != NULL);
	ag_ctx_reset(&e.ctx);
	CHECK(!ag_attention(&e.ctx, in[0], in[1], in[2], &(struct ag_attn_desc){ .slopes = slopes }));
	CHECK(strstr(e.ctx.err.msg, "ALiBi needs slopes") != NULL);
	ag_env_free(&e);
}

/* No query rows (Tq = 0): the CPU backend asks for no scratch, and the
 * kernels write nothing, forward and backward. */
TEST(attention_empty_query_rows)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *q = PARAM(&e, 1, 2, 3, 0, 4), *k = PARAM(&e, 2, 2, 3, 5, 4);
	struct tensor *v = PARAM(&e, 3, 2, 3, 5, 4);
	struct tensor *o = ag_attention(&e.ctx, q, k, v, &(struct ag_attn_desc){ .causal = true });
	REQUIRE(o);
	CHECK_SHAPE(o, 2, 3, 0, 4);
	REQUIRE(ag_backward(&e.ctx, ag_sum(&e.ctx, o, AG_DIM_ALL)) == 0);
	double g[2 * 3 * 5 * 4];
	tensor_read_f64(k->grad, g);
	CHECK(max_diff(g, (double[2 * 3 * 5 * 4]){ 0 }, 2 * 3 * 5 * 4) == 0);
	ag_env_free(&e);
}

/* ---- cross entropy ---- */

static struct tensor *build_xent(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	(void)user;
	return ag_cross_entropy(ctx, in[0], in[1], -100);
}

TEST(gradcheck_cross_entropy)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	const int32_t tv[10] = { 3, -100, 12, 0, 7, -100, -100, 5, 11, 5 };
	struct tensor *in[2] = {
		leaf(&e, 120, -2, 2, true, TENSOR_SHAPE(2, 5, 13)),
		ids_tensor(&e, tv, TENSOR_SHAPE(2, 5)),
	};
	struct tensor *loss = build_xent(&e.ctx, in, NULL);
	REQUIRE(loss);
	CHECK(loss->ndim == 0);
	double *l = vals(&e, in[0]), want = 0, got;
	int count = 0;
	for (int r = 0; r < 10; r++) {
		if (tv[r] == -100)
			continue;
		double m = -INFINITY, s = 0;
		for (int c = 0; c < 13; c++)
			m = fmax(m, l[r * 13 + c]);
		for (int c = 0; c < 13; c++)
			s += exp(l[r * 13 + c] - m);
		want += m + log(s) - l[r * 13 + tv[r]];
		count++;
	}
	want /= count;
	tensor_read_f64(loss, &got);
	CHECK_NEAR(got, want, 1e-13);
	ag_ctx_reset(&e.ctx);
	CHECK_GRAD_BOTH("cross_entropy with ignored targets", build_xent, in, 2, NULL, NULL);
	/* rows with an ignored target get exactly zero gradient */
	double *g = vals(&e, in[0]->grad);
	int nonzero = 0;
	for (int r = 0; r < 10; r++)
		for (int c = 0; c < 13 && tv[r] == -100; c++)
			nonzero += g[r * 13 + c] != 0;
	CHECK(nonzero == 0);
	ag_env_free(&e);
}

TEST(cross_entropy_all_ignored)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	const int32_t tv[10] = { -100, -100, -100, -100, -100, -100, -100, -100, -100, -100 };
	struct tensor *logits = leaf(&e, 121, -2, 2, true, TENSOR_SHAPE(2, 5, 13));
	struct tensor *targets = ids_tensor(&e, tv, TENSOR_SHAPE(2, 5));
	struct tensor *loss = ag_cross_entropy(&e.ctx, logits, targets, -100);
	REQUIRE(loss);
	double l;
	tensor_read_f64(loss, &l);
	CHECK(l == 0);
	REQUIRE(ag_backward(&e.ctx, loss) == 0);
	double *g = vals(&e, logits->grad);
	int nonzero = 0;
	for (int i = 0; i < 130; i++)
		nonzero += !(g[i] == 0); /* NaN counts */
	CHECK(nonzero == 0);
	ag_env_free(&e);
}

/* ---- ALiBi slopes ---- */

TEST(alibi_slopes_bloom)
{
	double s[128];
	bloom_alibi_slopes(8, s);
	for (int h = 0; h < 8; h++)
		CHECK_NEAR(s[h], ldexp(1.0, -(h + 1)), 1e-15);

	/* the BLOOM formula, computed independently in double, for many head
	 * counts (bloom-560m has 16 heads, bloom-176b 112). Hugging Face
	 * computes the slopes in f32 (an f32 base raised to integer powers),
	 * so agreement is to f32 precision, not exact. */
	const int counts[] = { 1, 2, 3, 5, 6, 12, 16, 20, 24, 32, 40, 71, 112 };
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		int n = counts[c], p = 1;
		while (p * 2 <= n)
			p *= 2;
		bloom_alibi_slopes(n, s);
		for (int h = 0; h < n; h++) {
			double want = h < p ? pow(2.0, -8.0 * (h + 1) / p)
					    : pow(2.0, -4.0 * (2 * (h - p) + 1) / p);
			if (!(fabs(s[h] - want) <= 1e-6 * want))
				test_fail_at(__FILE__, __LINE__,
					     "n_head %d: slope[%d] = %.17g, want %.17g",
					     n, h, s[h], want);
		}
	}
	/* n_head 12: 2^-1 .. 2^-8, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5 */
	bloom_alibi_slopes(12, s);
	CHECK_NEAR(s[7], 1.0 / 256, 1e-15);
	CHECK_NEAR(s[8], sqrt(0.5), 1e-6);
	CHECK_NEAR(s[11], pow(2.0, -3.5), 1e-7);
}

/* ---- grad mode ---- */

TEST(autograd_no_grad_records_nothing)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *x = PARAM(&e, 130, 3, 5);
	struct tensor *w = PARAM(&e, 131, 7, 5);
	bool prev = ag_set_grad_enabled(&e.ctx, false);
	CHECK(prev == true);
	int64_t n = e.ctx.n_nodes;
	struct tensor *y = ag_gelu(&e.ctx, ag_linear(&e.ctx, x, w, NULL));
	struct tensor *s = ag_sum(&e.ctx, y, AG_DIM_ALL);
	REQUIRE(s);
	CHECK(e.ctx.n_nodes == n);
	CHECK(e.ctx.tape == NULL);
	CHECK(y->node == NULL && !y->requires_grad);
	CHECK(s->node == NULL && !s->requires_grad);
	/* backward from a no_grad result is an error */
	CHECK(ag_backward(&e.ctx, s) == -1);
	CHECK(ag_failed(&e.ctx));
	CHECK(ag_set_grad_enabled(&e.ctx, prev) == false);
	ag_ctx_reset(&e.ctx);

	/* recording again afterwards */
	y = ag_gelu(&e.ctx, ag_linear(&e.ctx, x, w, NULL));
	REQUIRE(y);
	CHECK(e.ctx.n_nodes == 2);
	CHECK(y->node != NULL && y->requires_grad);
	ag_env_free(&e);
}

TEST(autograd_no_requires_grad_gets_no_grad)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *a = leaf(&e, 140, -1, 1, false, TENSOR_SHAPE(3, 5));
	struct tensor *b = PARAM(&e, 141, 3, 5);
	struct tensor *c = leaf(&e, 142, -1, 1, false, TENSOR_SHAPE(5));
	struct tensor *y = ag_add(&e.ctx, ag_mul(&e.ctx, a, b), c);
	REQUIRE(y);
	CHECK(y->requires_grad);
	REQUIRE(ag_backward(&e.ctx, ag_sum(&e.ctx, y, AG_DIM_ALL)) == 0);
	CHECK(a->grad == NULL);
	CHECK(c->grad == NULL);
	REQUIRE(b->grad);
	CHECK(max_diff(vals(&e, b->grad), vals(&e, a), 15) == 0); /* d/db = a */

	/* no input requires grad: the result does not either */
	ag_ctx_reset(&e.ctx);
	struct tensor *z = ag_mul(&e.ctx, a, a);
	REQUIRE(z);
	CHECK(!z->requires_grad);
	CHECK(a->grad == NULL);
	ag_env_free(&e);
}

TEST(autograd_backward_accumulates)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *x = PARAM(&e, 150, 3, 5);
	for (int k = 0; k < 2; k++) {
		struct tensor *l = ag_sum(&e.ctx, ag_scale(&e.ctx, x, 1.5), AG_DIM_ALL);
		REQUIRE(ag_backward(&e.ctx, l) == 0);
		ag_ctx_reset(&e.ctx);
	}
	double *g = vals(&e, x->grad);
	int bad = 0;
	for (int i = 0; i < 15; i++)
		bad += g[i] != 3.0;
	CHECK(bad == 0);
	ag_env_free(&e);
}

/* The checker itself must catch a wrong gradient: a build whose first two
 * forwards (the recorded one and the unperturbed no_grad one) compute x and
 * whose later ones compute 2x, so the numeric gradient is twice the
 * analytic one. */
static struct tensor *build_wrong(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	int *calls = user;
	return ag_scale(ctx, in[0], ++*calls <= 2 ? 1.0 : 2.0);
}

TEST(gradcheck_catches_a_wrong_gradient)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *in[1] = { PARAM(&e, 160, 3, 5) };
	struct gradcheck_result res;
	int calls = 0;
	CHECK(gradcheck("wrong", build_wrong, in, 1, &calls, NULL, &res) == -1);
	CHECK(!res.ok);
	CHECK(res.n_checked == 15);
	CHECK(res.worst_input == 0);
	CHECK_NEAR(res.worst_numeric, 2 * res.worst_analytic, 1e-8);
	CHECK(strstr(res.msg, "wrong") && strstr(res.msg, "mismatch"));
	ag_env_free(&e);
}
