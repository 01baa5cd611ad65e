/* silu.tmpl.h: REAL-typed bodies of SiLU and the fused SwiGLU (see
 * instantiate.h). silu(x) = x / (1 + exp(-x)): exp(-x) = inf (x below
 * about -88 in f32) gives -0, 0 gives x. The exp is FN(cpu_exp)
 * (fast_math.h: vectorised in f32, libm in f64). */
#include <tgmath.h>

#include "fast_math.h"

#define SILU_SPAN 1024 /* elements per call of a span kernel */

/* silu'(x) = s + x s (1 - s) with e = exp(-x), s = 1 / (1 + e) and
 * s (1 - s) = 1 / (2 + e + 1/e): 0 for e = 0 or inf, no cancellation. */
#define SILU_GRAD(v, e) ((REAL)1 / ((REAL)1 + (e)) + (v) / ((REAL)2 + (e) + (REAL)1 / (e)))

FN(CPU_CLONES) static void FN(silu_fwd_span)(int64_t n, const REAL *x, REAL *y)
{
#pragma omp simd
	for (int64_t i = 0; i < n; i++)
		y[i] = x[i] / ((REAL)1 + FN(cpu_exp)(-x[i]));
}

/* dx += dy silu'(x) */
FN(CPU_CLONES) static void FN(silu_bwd_span)(int64_t n, const REAL *x, const REAL *dy,
					     REAL *dx)
{
#pragma omp simd
	for (int64_t i = 0; i < n; i++) {
		REAL v = x[i], e = FN(cpu_exp)(-v);
		dx[i] += dy[i] * SILU_GRAD(v, e);
	}
}

/* y = silu(g) * u */
FN(CPU_CLONES) static void FN(swiglu_fwd_span)(int64_t n, const REAL *g, const REAL *u,
					       REAL *y)
{
#pragma omp simd
	for (int64_t i = 0; i < n; i++)
		y[i] = (g[i] / ((REAL)1 + FN(cpu_exp)(-g[i]))) * u[i];
}

/* dg += dy u silu'(g) (when dg), du += dy silu(g) (when du); at least one
 * of them is given. */
FN(CPU_CLONES) static void FN(swiglu_bwd_gate_span)(int64_t n, const REAL *g, const REAL *u,
						    const REAL *dy, REAL *dg)
{
#pragma omp simd
	for (int64_t i = 0; i < n; i++) {
		REAL v = g[i], e = FN(cpu_exp)(-v);
		dg[i] += dy[i] * u[i] * SILU_GRAD(v, e);
	}
}

FN(CPU_CLONES) static void FN(swiglu_bwd_up_span)(int64_t n, const REAL *g, const REAL *dy,
						  REAL *du)
{
#pragma omp simd
	for (int64_t i = 0; i < n; i++)
		du[i] += dy[i] * (g[i] / ((REAL)1 + FN(cpu_exp)(-g[i])));
}

static void FN(silu_fwd)(int64_t n, const REAL *x, REAL *y)
{
#pragma omp parallel for if (n >= CPU_PAR_MIN / 8)
	for (int64_t i = 0; i < n; i += SILU_SPAN)
		FN(silu_fwd_span)(n - i < SILU_SPAN ? n - i : SILU_SPAN, x + i, y + i);
}

static void FN(silu_bwd)(int64_t n, const REAL *x, const REAL *dy, REAL *dx)
{
#pragma omp parallel for if (n >= CPU_PAR_MIN / 8)
	for (int64_t i = 0; i < n; i += SILU_SPAN)
		FN(silu_bwd_span)(n - i < SILU_SPAN ? n - i : SILU_SPAN, x + i, dy + i, dx + i);
}

static void FN(swiglu_fwd)(int64_t n, const REAL *g, const REAL *u, REAL *y)
{
#pragma omp parallel for if (n >= CPU_PAR_MIN / 8)
	for (int64_t i = 0; i < n; i += SILU_SPAN)
		FN(swiglu_fwd_span)(n - i < SILU_SPAN ? n - i : SILU_SPAN, g + i, u + i, y + i);
}

static void FN(swiglu_bwd)(int64_t n, const REAL *g, const REAL *u, const REAL *dy,
			   REAL *dg, REAL *du)
{
#pragma omp parallel for if (n >= CPU_PAR_MIN / 8)
	for (int64_t i = 0; i < n; i += SILU_SPAN) {
		int64_t m = n - i < SILU_SPAN ? n - i : SILU_SPAN;
		if (dg)
			FN(swiglu_bwd_gate_span)(m, g + i, u + i, dy + i, dg + i);
		if (du)
			FN(swiglu_bwd_up_span)(m, g + i, dy + i, du + i);
	}
}

#undef SILU_SPAN
#undef SILU_GRAD
