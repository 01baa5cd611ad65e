/* norm.tmpl.h: REAL-typed bodies of layer norm and softmax over the last
 * dim (see instantiate.h). Row statistics accumulate in double. */
#include <tgmath.h>

#include "fast_math.h"

/* x, y (rows, c); w, b (c) (b may be NULL); mean, rstd (rows). */
static void FN(layernorm_fwd)(int64_t rows, int64_t c, double eps, const REAL *x,
			      const REAL *w, const REAL *b, REAL *y, REAL *mean,
			      REAL *rstd)
{
#pragma omp parallel for if (rows * c >= CPU_PAR_MIN / 4)
	for (int64_t r = 0; r < rows; r++) {
		const REAL *xr = x + r * c;
		double m = 0, v = 0;
		for (int64_t i = 0; i < c; i++)
			m += xr[i];
		m /= (double)c;
		for (int64_t i = 0; i < c; i++)
			v += (xr[i] - m) * (xr[i] - m);
		v /= (double)c;
		REAL rs = (REAL)(1.0 / sqrt(v + eps));
		REAL mr = (REAL)m;
		mean[r] = mr;
		rstd[r] = rs;
		REAL *yr = y + r * c;
		for (int64_t i = 0; i < c; i++)
			yr[i] = (xr[i] - mr) * rs * w[i] + (b ? b[i] : (REAL)0);
	}
}

/* dx += rstd (g - mean(g) - xhat mean(g xhat)), g = dy w;
 * dw += sum_rows dy xhat; db += sum_rows dy (column-parallel, ordered). */
static void FN(layernorm_bwd)(int64_t rows, int64_t c, const REAL *x, const REAL *w,
			      const REAL *mean, const REAL *rstd, const REAL *dy,
			      REAL *dx, REAL *dw, REAL *db)
{
	if (dx) {
#pragma omp parallel for if (rows * c >= CPU_PAR_MIN / 4)
		for (int64_t r = 0; r < rows; r++) {
			const REAL *xr = x + r * c, *dyr = dy + r * c;
			REAL m = mean[r], rs = rstd[r];
			double sg = 0, sgx = 0;
			for (int64_t i = 0; i < c; i++) {
				double g = (double)dyr[i] * w[i];
				sg += g;
				sgx += g * (double)((xr[i] - m) * rs);
			}
			REAL mg = (REAL)(sg / (double)c), mgx = (REAL)(sgx / (double)c);
			REAL *dxr = dx + r * c;
			for (int64_t i = 0; i < c; i++) {
				REAL xh = (xr[i] - m) * rs;
				dxr[i] += rs * (dyr[i] * w[i] - mg - xh * mgx);
			}
		}
	}
	if (dw || db) {
		/* column sums: threads split the columns into blocks of 16 and
		 * walk the rows in order, so each sum is formed in row order
		 * whatever the thread count, reading rows contiguously */
		int64_t nblk = (c + 15) / 16;
#pragma omp parallel for if (rows * c >= CPU_PAR_MIN / 4)
		for (int64_t b = 0; b < nblk; b++) {
			int64_t lo = b * 16, n = lo + 16 < c ? 16 : c - lo;
			double sw[16] = { 0 }, sb[16] = { 0 };
			for (int64_t r = 0; r < rows; r++) {
				const REAL *xr = x + r * c + lo, *dyr = dy + r * c + lo;
				REAL m = mean[r], rs = rstd[r];
				for (int64_t i = 0; i < n; i++) {
					REAL d = dyr[i];
					sw[i] += (double)d * (double)((xr[i] - m) * rs);
					sb[i] += d;
				}
			}
			for (int64_t i = 0; i < n; i++) {
				if (dw)
					dw[lo + i] += (REAL)sw[i];
				if (db)
					db[lo + i] += (REAL)sb[i];
			}
		}
	}
}

static void FN(softmax_fwd)(int64_t rows, int64_t c, const REAL *x, REAL *y)
{
#pragma omp parallel for if (rows * c >= CPU_PAR_MIN / 4)
	for (int64_t r = 0; r < rows; r++) {
		const REAL *xr = x + r * c;
		REAL *yr = y + r * c;
		REAL mx = -INFINITY;
		for (int64_t i = 0; i < c; i++)
			mx = xr[i] > mx ? xr[i] : mx;
		FN(hug_softmax_shift)(c, xr, mx, yr);
	}
}

/* dx += y (dy - sum(dy y)). */
static void FN(softmax_bwd)(int64_t rows, int64_t c, const REAL *y, const REAL *dy,
			    REAL *dx)
{
#pragma omp parallel for if (rows * c >= CPU_PAR_MIN / 4)
	for (int64_t r = 0; r < rows; r++) {
		const REAL *yr = y + r * c, *dyr = dy + r * c;
		double s = 0;
		for (int64_t i = 0; i < c; i++)
			s += (double)dyr[i] * yr[i];
		REAL *dxr = dx + r * c;
		for (int64_t i = 0; i < c; i++)
			dxr[i] += yr[i] * (dyr[i] - (REAL)s);
	}
}
