/* fast_math.c: the shifted-exp row kernels of fast_math.h. */
#include "fast_math.h"

HUG_TARGET_CLONES void hug_exp_shift_f32(int64_t n, const float *x, float shift, float *y)
{
#pragma omp simd
	for (int64_t i = 0; i < n; i++)
		y[i] = hug_expf(x[i] - shift);
}

void hug_exp_shift_f64(int64_t n, const double *x, double shift, double *y)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = exp(x[i] - shift);
}
