/* elementwise.tmpl.h: REAL-typed bodies of the element-wise CPU kernels
 * (see instantiate.h): broadcasting add/mul, scale, GeLU, dropout,
 * accumulate and fill. */
#include <tgmath.h>

#include "fast_math.h"

/* out = a (op) b with broadcasting; the layout of autograd/bcast.h. */
static void FN(binary_fwd)(const struct ag_bcast *bc, const REAL *a, const REAL *b,
			   REAL *out, bool is_mul)
{
	const int64_t *s = bc->shape;
	int64_t outer = s[0] * s[1] * s[2];
#pragma omp parallel for if (outer * s[3] >= CPU_PAR_MIN)
	for (int64_t o = 0; o < outer; o++) {
		int64_t i0 = o / (s[1] * s[2]), i1 = o / s[2] % s[1], i2 = o % s[2];
		const REAL *pa = a + i0 * bc->sa[0] + i1 * bc->sa[1] + i2 * bc->sa[2];
		const REAL *pb = b + i0 * bc->sb[0] + i1 * bc->sb[1] + i2 * bc->sb[2];
		REAL *po = out + o * s[3];
		int64_t sa = bc->sa[3], sb = bc->sb[3];
		if (is_mul)
			for (int64_t i = 0; i < s[3]; i++)
				po[i] = pa[i * sa] * pb[i * sb];
		else
			for (int64_t i = 0; i < s[3]; i++)
				po[i] = pa[i * sa] + pb[i * sb];
	}
}

/* dx += dout (* other), summed over the dims where x was broadcast. x's
 * strides `sx` are 0 on broadcast dims; `other` (strides so) may be NULL.
 * When x is not broadcast anywhere the loop runs in parallel; otherwise
 * serially, in a fixed order (deterministic). */
static void FN(binary_bwd)(const struct ag_bcast *bc, REAL *dx, const int64_t *sx,
			   const REAL *dout, const REAL *other, const int64_t *so,
			   bool x_full)
{
	const int64_t *s = bc->shape;
	int64_t outer = s[0] * s[1] * s[2];
#pragma omp parallel for if (x_full && outer * s[3] >= CPU_PAR_MIN)
	for (int64_t o = 0; o < outer; o++) {
		int64_t i0 = o / (s[1] * s[2]), i1 = o / s[2] % s[1], i2 = o % s[2];
		REAL *px = dx + i0 * sx[0] + i1 * sx[1] + i2 * sx[2];
		const REAL *pd = dout + o * s[3];
		if (other) {
			const REAL *po = other + i0 * so[0] + i1 * so[1] + i2 * so[2];
			for (int64_t i = 0; i < s[3]; i++)
				px[i * sx[3]] += pd[i] * po[i * so[3]];
		} else {
			for (int64_t i = 0; i < s[3]; i++)
				px[i * sx[3]] += pd[i];
		}
	}
}

static void FN(scale_fwd)(int64_t n, REAL alpha, const REAL *x, REAL *y)
{
#pragma omp parallel for if (n >= CPU_PAR_MIN)
	for (int64_t i = 0; i < n; i++)
		y[i] = alpha * x[i];
}

static void FN(axpy)(int64_t n, REAL alpha, const REAL *x, REAL *y)
{
#pragma omp parallel for if (n >= CPU_PAR_MIN)
	for (int64_t i = 0; i < n; i++)
		y[i] += alpha * x[i];
}

#define GELU_C ((REAL)0.79788456080286535588) /* sqrt(2/pi) */
#define GELU_A ((REAL)0.044715)
#define GELU_SPAN 1024 /* elements per call of a span kernel */

/* GeLU (tanh approximation) as 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)),
 * u = sqrt(2/pi) (x + 0.044715 x^3): the same function without the tanh
 * form's cancellation for negative x, and one exp (fast in f32, see
 * fast_math.h). exp(-2u) = inf (x below about -10 in f32) gives -0. */
FN(CPU_CLONES) static void FN(gelu_fwd_span)(int64_t n, const REAL *x, REAL *y)
{
#pragma omp simd
	for (int64_t i = 0; i < n; i++) {
		REAL v = x[i];
		REAL u = GELU_C * (v + GELU_A * v * v * v);
		y[i] = v / ((REAL)1 + FN(cpu_exp)((REAL)-2 * u));
	}
}

/* dx += dy gelu'(x): with e = exp(-2u) and s = 1 / (1 + e),
 * gelu' = s + 2 x s (1 - s) u', u' = sqrt(2/pi) (1 + 3 0.044715 x^2), and
 * s (1 - s) = 1 / (2 + e + 1/e): no cancellation as s nears 1, 0 for
 * e = 0 or inf, and no select (which would stop the vectoriser). */
FN(CPU_CLONES) static void FN(gelu_bwd_span)(int64_t n, const REAL *x, const REAL *dy,
					     REAL *dx)
{
#pragma omp simd
	for (int64_t i = 0; i < n; i++) {
		REAL v = x[i];
		REAL u = GELU_C * (v + GELU_A * v * v * v);
		REAL e = FN(cpu_exp)((REAL)-2 * u);
		REAL s = (REAL)1 / ((REAL)1 + e);
		REAL ss = (REAL)1 / ((REAL)2 + e + (REAL)1 / e);
		REAL du = GELU_C * ((REAL)1 + (REAL)3 * GELU_A * v * v);
		dx[i] += dy[i] * (s + (REAL)2 * v * ss * du);
	}
}

static void FN(gelu_fwd)(int64_t n, const REAL *x, REAL *y)
{
#pragma omp parallel for if (n >= CPU_PAR_MIN / 8)
	for (int64_t i = 0; i < n; i += GELU_SPAN)
		FN(gelu_fwd_span)(n - i < GELU_SPAN ? n - i : GELU_SPAN, x + i, y + i);
}

static void FN(gelu_bwd)(int64_t n, const REAL *x, const REAL *dy, REAL *dx)
{
#pragma omp parallel for if (n >= CPU_PAR_MIN / 8)
	for (int64_t i = 0; i < n; i += GELU_SPAN)
		FN(gelu_bwd_span)(n - i < GELU_SPAN ? n - i : GELU_SPAN, x + i, dy + i, dx + i);
}

#undef GELU_C
#undef GELU_A
#undef GELU_SPAN

/* y = x * keep / (1 - p) with keep = uniform(seed, offset + i) >= p; the
 * backward applies the same mask to dy. `acc` selects dx += instead of =. */
static void FN(dropout_apply)(int64_t n, double p, uint64_t seed, uint64_t offset,
			      const REAL *x, REAL *y, bool acc)
{
	REAL scale = (REAL)(1.0 / (1.0 - p));
	float pf = (float)p;
#pragma omp parallel for if (n >= CPU_PAR_MIN / 8)
	for (int64_t i = 0; i < n; i++) {
		REAL v = rng_uniform(seed, offset + (uint64_t)i) >= pf ? x[i] * scale : (REAL)0;
		if (acc)
			y[i] += v;
		else
			y[i] = v;
	}
}

static void FN(fill)(int64_t n, REAL value, REAL *y)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = value;
}
