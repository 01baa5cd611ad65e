/* rmsnorm.tmpl.h: REAL-typed bodies of RMSNorm over the last dim (see
 * instantiate.h). Row sums accumulate in double in RMS_LANES interleaved
 * partial sums (element i into lane i % RMS_LANES) added in lane order at
 * the end: independent lanes vectorise without reassociation, so the
 * order, and the bits, are the same in every build, every clone
 * (FN(CPU_CLONES): AVX-512, AVX2, baseline; no FMA contraction in C11
 * mode) and at every thread count. The weight gradient's column sums walk
 * the rows in order. */
#include <tgmath.h>

#include "fast_math.h"

#define RMS_LANES 8

/* sum_i a[i] * b[i] in double over n elements, in the lane order above */
FN(CPU_CLONES) static double FN(rms_dot)(int64_t n, const REAL *a, const REAL *b)
{
	double acc[RMS_LANES] = { 0 };
	int64_t i = 0;
	for (; i + RMS_LANES <= n; i += RMS_LANES)
		for (int l = 0; l < RMS_LANES; l++)
			acc[l] += (double)a[i + l] * (double)b[i + l];
	for (int l = 0; i < n; i++, l++)
		acc[l] += (double)a[i] * (double)b[i];
	double s = 0;
	for (int l = 0; l < RMS_LANES; l++)
		s += acc[l];
	return s;
}

/* x, y (rows, c); w (c) or NULL; rstd (rows): y = (x * rstd) * w with
 * rstd = 1 / sqrt(mean(x^2) + eps) (the product in that order, as
 * transformers' LlamaRMSNorm forms it). */
static void FN(rmsnorm_fwd)(int64_t rows, int64_t c, double eps, const REAL *x,
			    const REAL *w, REAL *y, REAL *rstd)
{
#pragma omp parallel for if (rows * c >= CPU_PAR_MIN / 4)
	for (int64_t r = 0; r < rows; r++) {
		const REAL *xr = x + r * c;
		double ss = FN(rms_dot)(c, xr, xr);
		REAL rs = (REAL)(1.0 / sqrt(ss / (double)c + eps));
		rstd[r] = rs;
		REAL *yr = y + r * c;
		if (w)
			for (int64_t i = 0; i < c; i++)
				yr[i] = (xr[i] * rs) * w[i];
		else
			for (int64_t i = 0; i < c; i++)
				yr[i] = xr[i] * rs;
	}
}

/* sum_i a[i] * b[i] * w[i] in double, in the lane order above */
FN(CPU_CLONES) static double FN(rms_dot3)(int64_t n, const REAL *a, const REAL *b, const REAL *w)
{
	double acc[RMS_LANES] = { 0 };
	int64_t i = 0;
	for (; i + RMS_LANES <= n; i += RMS_LANES)
		for (int l = 0; l < RMS_LANES; l++)
			acc[l] += (double)(a[i + l] * w[i + l]) * (double)b[i + l];
	for (int l = 0; i < n; i++, l++)
		acc[l] += (double)(a[i] * w[i]) * (double)b[i];
	double s = 0;
	for (int l = 0; l < RMS_LANES; l++)
		s += acc[l];
	return s;
}

/* With xhat = x rstd and g = dy w (dy without a weight):
 * dx += rstd (g - xhat mean(g xhat)), sum(g xhat) formed as
 * rstd sum(g x). */
static void FN(rmsnorm_bwd_dx)(int64_t rows, int64_t c, const REAL *x, const REAL *w,
			       const REAL *rstd, const REAL *dy, REAL *dx)
{
#pragma omp parallel for if (rows * c >= CPU_PAR_MIN / 4)
	for (int64_t r = 0; r < rows; r++) {
		const REAL *xr = x + r * c, *dyr = dy + r * c;
		REAL rs = rstd[r];
		double sgx = w ? FN(rms_dot3)(c, dyr, xr, w) : FN(rms_dot)(c, dyr, xr);
		REAL mgx = (REAL)(sgx * (double)rs / (double)c);
		REAL *dxr = dx + r * c;
		if (w)
			for (int64_t i = 0; i < c; i++)
				dxr[i] += rs * (dyr[i] * w[i] - (xr[i] * rs) * mgx);
		else
			for (int64_t i = 0; i < c; i++)
				dxr[i] += rs * (dyr[i] - (xr[i] * rs) * mgx);
	}
}

/* dw += sum_rows dy xhat: column blocks of 64 split over threads, each
 * walking the rows in order. */
static void FN(rmsnorm_bwd_dw)(int64_t rows, int64_t c, const REAL *x, const REAL *rstd,
			       const REAL *dy, REAL *dw)
{
	int64_t nblk = (c + 63) / 64;
#pragma omp parallel for if (rows * c >= CPU_PAR_MIN / 4)
	for (int64_t b = 0; b < nblk; b++) {
		int64_t lo = b * 64, n = lo + 64 < c ? 64 : c - lo;
		double sw[64] = { 0 };
		for (int64_t r = 0; r < rows; r++) {
			const REAL *xr = x + r * c + lo, *dyr = dy + r * c + lo;
			REAL rs = rstd[r];
			for (int64_t i = 0; i < n; i++)
				sw[i] += (double)dyr[i] * (double)(xr[i] * rs);
		}
		for (int64_t i = 0; i < n; i++)
			dw[lo + i] += (REAL)sw[i];
	}
}

#undef RMS_LANES
