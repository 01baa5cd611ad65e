/* test_fast_math.c: autograd/cpu/fast_math.h's hug_expf against exp() in
 * double on a dense sample of all floats and on every float near its
 * overflow and underflow bounds, its special values, the multiversioned
 * row kernel (the same bits as the inline function), and GeLU at the
 * extremes, where its exp form must behave like the tanh form it replaced. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../autograd/cpu/fast_math.h"
#include "harness.h"

/* Every 509th bit pattern: 8.4M floats, every exponent and sign (~0.3 s). */
#define SAMPLE_STRIDE 509u
#define BLOCK 4096

static float from_bits(uint32_t b)
{
	float f;
	memcpy(&f, &b, sizeof(f));
	return f;
}

static uint32_t to_bits(float f)
{
	uint32_t b;
	memcpy(&b, &f, sizeof(b));
	return b;
}

/* Checks y = hug_expf(x) against the contract; returns its error in ulps
 * for normal results (0 otherwise), or -1 after reporting a violation. */
static double check_one(float x, float y)
{
	if (isnan(x)) {
		if (to_bits(y) != to_bits(x)) {
			test_fail_at(__FILE__, __LINE__, "exp(NaN 0x%08x) = 0x%08x",
				     to_bits(x), to_bits(y));
			return -1;
		}
		return 0;
	}
	double ref = exp((double)x);
	if (ref > FLT_MAX || x > 88.7228394f) {
		if (!(isinf(y) && y > 0)) {
			test_fail_at(__FILE__, __LINE__, "exp(%a) = %a, want inf", x, y);
			return -1;
		}
		return 0;
	}
	if (x < -87.3365479f) {
		if (to_bits(y) != 0) {
			test_fail_at(__FILE__, __LINE__, "exp(%a) = %a, want +0", x, y);
			return -1;
		}
		return 0;
	}
	if (ref < FLT_MIN)
		return 0; /* -87.3365479f itself: a subnormal, not bound */
	/* one f32 ulp at ref: 2^(exponent of ref - 23), from its bits */
	uint64_t rb, ub;
	memcpy(&rb, &ref, sizeof(rb));
	ub = ((rb >> 52) - 23) << 52;
	double ulp;
	memcpy(&ulp, &ub, sizeof(ulp));
	double ulps = fabs((double)y - ref) / ulp;
	if (!(ulps <= 1.0)) {
		test_fail_at(__FILE__, __LINE__, "exp(%a) = %a, ref %a: %.3f ulp", x,
			     y, ref, ulps);
		return -1;
	}
	return ulps;
}

/* hug_expf over x[0..n) in a simd loop, as the kernels run it. */
static void expf_block(int n, const float *x, float *y)
{
#pragma omp simd
	for (int i = 0; i < n; i++)
		y[i] = hug_expf(x[i]);
}

TEST(fast_expf_sampled_within_one_ulp)
{
	static float x[BLOCK], y[BLOCK];
	double worst = 0;
	int bad = 0;
	for (uint64_t b = 0; b < (1ull << 32) && bad < 10;) {
		int n = 0;
		for (; n < BLOCK && b < (1ull << 32); n++, b += SAMPLE_STRIDE)
			x[n] = from_bits((uint32_t)b);
		expf_block(n, x, y);
		for (int i = 0; i < n; i++) {
			double u = check_one(x[i], y[i]);
			bad += u < 0;
			worst = fmax(worst, u);
		}
	}
	CHECK(bad == 0);
	CHECK(worst > 0.5 && worst <= 1.0); /* sampled: close to the bound */
}

/* Every float within about 1e-4 of the overflow and underflow bounds. */
TEST(fast_expf_bounds_dense)
{
	const float edges[] = { 88.7228394f, -87.3365479f };
	int bad = 0;
	for (int k = 0; k < 2; k++) {
		uint32_t c = to_bits(edges[k]);
		for (uint32_t b = c - 20000; b <= c + 20000 && bad < 10; b++) {
			float x = from_bits(b), y;
			expf_block(1, &x, &y);
			bad += check_one(x, y) < 0 || to_bits(y) != to_bits(hug_expf(x));
		}
	}
	CHECK(bad == 0);
}

TEST(fast_expf_special_values)
{
	CHECK(to_bits(hug_expf(0.0f)) == to_bits(1.0f));
	CHECK(to_bits(hug_expf(-0.0f)) == to_bits(1.0f));
	CHECK(to_bits(hug_expf(FLT_TRUE_MIN)) == to_bits(1.0f));
	CHECK(to_bits(hug_expf(-FLT_TRUE_MIN)) == to_bits(1.0f));
	CHECK(to_bits(hug_expf(1.0f)) == to_bits((float)exp(1.0)));
	CHECK(isinf(hug_expf(INFINITY)) && hug_expf(INFINITY) > 0);
	CHECK(isinf(hug_expf(FLT_MAX)) && hug_expf(FLT_MAX) > 0);
	CHECK(isinf(hug_expf(88.8f)));
	CHECK(to_bits(hug_expf(-INFINITY)) == 0);
	CHECK(to_bits(hug_expf(-FLT_MAX)) == 0);
	CHECK(to_bits(hug_expf(-100.0f)) == 0);
	/* the lower bound itself: exp rounds to the subnormal just below FLT_MIN */
	CHECK(to_bits(hug_expf(-87.3365479f)) == to_bits((float)exp((double)-87.3365479f)));
	const uint32_t nans[] = { 0x7fc00000u, 0xffc00000u, 0x7fc12345u, 0xffffffffu };
	for (int i = 0; i < 4; i++)
		CHECK(to_bits(hug_expf(from_bits(nans[i]))) == nans[i]);
}

/* The multiversioned row kernel (the AVX-512 or AVX2 clone where the CPU
 * has one) gives the inline function's bits, shift included. */
TEST(fast_exp_shift_matches_inline)
{
	static float x[BLOCK], y[BLOCK];
	int bad = 0;
	const float shifts[] = { 0.0f, 3.5f, -INFINITY };
	for (int s = 0; s < 3; s++) {
		for (uint64_t b0 = 0; b0 < (1ull << 32); b0 += (uint64_t)BLOCK * 4099) {
			for (int i = 0; i < BLOCK; i++)
				x[i] = from_bits((uint32_t)(b0 + (uint64_t)i * 1031));
			int n = BLOCK - s; /* odd lengths reach the scalar tail */
			hug_exp_shift_f32(n, x, shifts[s], y);
			for (int i = 0; i < n; i++)
				bad += to_bits(y[i]) != to_bits(hug_expf(x[i] - shifts[s]));
		}
	}
	CHECK(bad == 0);
	/* in place, and -inf (a masked score) gives 0 */
	float r[3] = { -INFINITY, 0.0f, 1.0f };
	hug_exp_shift_f32(3, r, 1.0f, r);
	CHECK(r[0] == 0.0f && r[2] == 1.0f);
	CHECK(to_bits(r[1]) == to_bits(hug_expf(-1.0f)));
}

/* GeLU and its gradient at inf, NaN and in both tails, in f32 and f64, as
 * the tanh form gave them (NaN for every gradient there and for the value
 * at -inf; -0 and 0 far left; x and 1 far right), and at x = -10, where
 * the tanh form's f32 value cancelled to -0, close to the true one. */
static void gelu_extremes(enum dtype dt)
{
	const double xs[] = { -INFINITY, INFINITY, NAN, -30.0, 30.0, 0.0, -10.0 };
	enum { N = 7 };
	struct arena a, step;
	arena_init(&a, "test", 0, NULL);
	arena_init(&step, "step", 0, NULL);
	struct ag_ctx ctx;
	ag_ctx_init(&ctx, &step);
	struct tensor *x = tensor_new(&a, dt, TENSOR_SHAPE(N));
	struct tensor *dy = tensor_new(&a, dt, TENSOR_SHAPE(N));
	for (int i = 0; i < N; i++) {
		if (dt == DT_F32) {
			((float *)x->data)[i] = (float)xs[i];
			((float *)dy->data)[i] = 1.0f;
		} else {
			((double *)x->data)[i] = xs[i];
			((double *)dy->data)[i] = 1.0;
		}
	}
	tensor_set_requires_grad(x, &a);
	struct tensor *y = ag_gelu(&ctx, x);
	REQUIRE(y);
	REQUIRE(ag_backward_from(&ctx, y, dy) == 0);
	double v[N], g[N];
	for (int i = 0; i < N; i++) {
		v[i] = dt == DT_F32 ? ((float *)y->data)[i] : ((double *)y->data)[i];
		g[i] = dt == DT_F32 ? ((float *)x->grad->data)[i]
				    : ((double *)x->grad->data)[i];
	}
	CHECK(isnan(v[0]) && isnan(g[0]));
	CHECK(isinf(v[1]) && v[1] > 0 && isnan(g[1]));
	CHECK(isnan(v[2]) && isnan(g[2]));
	CHECK(v[3] == 0 && signbit(v[3]) && g[3] == 0);
	CHECK(v[4] == 30.0 && g[4] == 1.0);
	CHECK(v[5] == 0 && g[5] == 0.5);
	/* gelu(-10) = -1.2040865e-37, gelu'(-10) = -2.7576e-36 */
	double u = sqrt(2 / M_PI) * (-10 + 0.044715 * -1000), e = exp(-2 * u);
	double want_v = -10 / (1 + e);
	double want_g = 1 / (1 + e) + 2 * -10 / (2 + e + 1 / e) * sqrt(2 / M_PI) * (1 + 3 * 0.044715 * 100);
	CHECK(fabs(v[6] - want_v) <= 1e-5 * fabs(want_v));
	CHECK(fabs(g[6] - want_g) <= 1e-5 * fabs(want_g));
	arena_free(&step);
	arena_free(&a);
}

TEST(fast_math_gelu_extremes_f32)
{
	gelu_extremes(DT_F32);
}

TEST(fast_math_gelu_extremes_f64)
{
	gelu_extremes(DT_F64);
}
