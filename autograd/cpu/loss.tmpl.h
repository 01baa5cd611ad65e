/* loss.tmpl.h: REAL-typed fused log-softmax + cross-entropy with an ignore
 * index (see instantiate.h). */
#include <tgmath.h>

/* lse (rows) = log sum exp of each counted row; returns the mean loss over
 * counted rows and the count via *count. */
static double FN(xent_fwd)(int64_t rows, int64_t v, const REAL *x, const int32_t *t,
			   int32_t ignore, REAL *lse, int64_t *count)
{
#pragma omp parallel for if (rows * v >= CPU_PAR_MIN / 4)
	for (int64_t r = 0; r < rows; r++) {
		if (t[r] == ignore) {
			lse[r] = 0;
			continue;
		}
		const REAL *xr = x + r * v;
		REAL mx = -INFINITY;
		for (int64_t i = 0; i < v; i++)
			mx = xr[i] > mx ? xr[i] : mx;
		double s = 0;
		for (int64_t i = 0; i < v; i++)
			s += exp((double)(xr[i] - mx));
		lse[r] = mx + (REAL)log(s);
	}
	double total = 0;
	int64_t c = 0;
	for (int64_t r = 0; r < rows; r++) {
		if (t[r] == ignore)
			continue;
		total += (double)lse[r] - (double)x[r * v + t[r]];
		c++;
	}
	*count = c;
	return c ? total / (double)c : 0.0;
}

/* dx (rows, v) += g (softmax(x) - onehot(t)) on counted rows. */
static void FN(xent_bwd)(int64_t rows, int64_t v, const REAL *x, const int32_t *t,
			 int32_t ignore, const REAL *lse, REAL g, REAL *dx)
{
#pragma omp parallel for if (rows * v >= CPU_PAR_MIN / 4)
	for (int64_t r = 0; r < rows; r++) {
		if (t[r] == ignore)
			continue;
		const REAL *xr = x + r * v;
		REAL *dr = dx + r * v;
		for (int64_t i = 0; i < v; i++)
			dr[i] += g * exp(xr[i] - lse[r]);
		dr[t[r]] -= g;
	}
}

static double FN(scalar_get)(const void *p)
{
	return *(const REAL *)p;
}

static void FN(scalar_set)(void *p, double v)
{
	*(REAL *)p = (REAL)v;
}
