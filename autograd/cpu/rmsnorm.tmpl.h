/* rmsnorm.tmpl.h: REAL-typed bodies of RMSNorm over the last dim (see
 * instantiate.h). The sum of squares and the backward's row and column
 * sums accumulate in double, in a fixed order (thread-count independent). */
#include <tgmath.h>

/* x, y (rows, c); w (c) or NULL; rstd (rows): y = (x * rstd) * w with
 * rstd = 1 / sqrt(mean(x^2) + eps) (the product in that order, as
 * transformers' LlamaRMSNorm forms it). */
static void FN(rmsnorm_fwd)(int64_t rows, int64_t c, double eps, const REAL *x,
			    const REAL *w, REAL *y, REAL *rstd)
{
#pragma omp parallel for if (rows * c >= CPU_PAR_MIN / 4)
	for (int64_t r = 0; r < rows; r++) {
		const REAL *xr = x + r * c;
		double ss = 0;
		for (int64_t i = 0; i < c; i++)
			ss += (double)xr[i] * (double)xr[i];
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

/* With xhat = x rstd and g = dy w (dy without a weight):
 * dx += rstd (g - xhat mean(g xhat)); dw += sum_rows dy xhat (column
 * blocks of 64 split over threads, each walking the rows in order). */
static void FN(rmsnorm_bwd)(int64_t rows, int64_t c, const REAL *x, const REAL *w,
			    const REAL *rstd, const REAL *dy, REAL *dx, REAL *dw)
{
	if (dx) {
#pragma omp parallel for if (rows * c >= CPU_PAR_MIN / 4)
		for (int64_t r = 0; r < rows; r++) {
			const REAL *xr = x + r * c, *dyr = dy + r * c;
			REAL rs = rstd[r];
			double sgx = 0;
			for (int64_t i = 0; i < c; i++) {
				double g = w ? (double)dyr[i] * w[i] : (double)dyr[i];
				sgx += g * (double)(xr[i] * rs);
			}
			REAL mgx = (REAL)(sgx / (double)c);
			REAL *dxr = dx + r * c;
			for (int64_t i = 0; i < c; i++) {
				REAL g = w ? dyr[i] * w[i] : dyr[i];
				dxr[i] += rs * (g - (xr[i] * rs) * mgx);
			}
		}
	}
	if (dw) {
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
}
