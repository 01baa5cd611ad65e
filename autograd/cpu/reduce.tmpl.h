/* reduce.tmpl.h: REAL-typed bodies of sum and mean (see instantiate.h).
 * Sums accumulate in double over fixed-size blocks combined in order, so
 * results do not depend on the thread count. */

#define REDUCE_PARTS 256

/* Sum of all n elements of x: at most REDUCE_PARTS blocks (of at least
 * 4096 elements; the split depends on n alone) summed in parallel, then
 * combined in order. */
static double FN(sum_all)(int64_t n, const REAL *x)
{
	int64_t block = (n + REDUCE_PARTS - 1) / REDUCE_PARTS;
	if (block < 4096)
		block = 4096;
	int64_t nb = (n + block - 1) / block;
	double part[REDUCE_PARTS];
#pragma omp parallel for if (n >= CPU_PAR_MIN)
	for (int64_t b = 0; b < nb; b++) {
		int64_t lo = b * block, hi = lo + block < n ? lo + block : n;
		double s = 0;
		for (int64_t i = lo; i < hi; i++)
			s += x[i];
		part[b] = s;
	}
	double s = 0;
	for (int64_t b = 0; b < nb; b++)
		s += part[b];
	return s;
}

/* y (outer, inner) = scale * sum_k x (outer, k, inner). */
static void FN(sum_dim)(int64_t outer, int64_t k, int64_t inner, double scale,
			const REAL *x, REAL *y)
{
#pragma omp parallel for if (outer * k * inner >= CPU_PAR_MIN)
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			double s = 0;
			for (int64_t j = 0; j < k; j++)
				s += x[(o * k + j) * inner + i];
			y[o * inner + i] = (REAL)(s * scale);
		}
}

/* dx (outer, k, inner) += scale * dy (outer, inner). */
static void FN(sum_dim_bwd)(int64_t outer, int64_t k, int64_t inner, double scale,
			    const REAL *dy, REAL *dx)
{
#pragma omp parallel for if (outer * k * inner >= CPU_PAR_MIN)
	for (int64_t o = 0; o < outer; o++)
		for (int64_t j = 0; j < k; j++)
			for (int64_t i = 0; i < inner; i++)
				dx[(o * k + j) * inner + i] += (REAL)scale * dy[o * inner + i];
}

static void FN(store_scalar)(void *y, double v)
{
	*(REAL *)y = (REAL)v;
}

#undef REDUCE_PARTS
