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

#define SOFTMAX_SHIFT(REAL, NAME, EXP_SHIFT)                                   \
	void NAME(int64_t n, const REAL *x, REAL shift, REAL *y)                  \
	{                                                                        \
		EXP_SHIFT(n, x, shift, y);                                        \
		double sum = 0;                                                  \
		for (int64_t i = 0; i < n; i++)                                  \
			sum += y[i];                                             \
		REAL inv = (REAL)(1.0 / sum);                                    \
		for (int64_t i = 0; i < n; i++)                                  \
			y[i] *= inv;                                             \
	}
SOFTMAX_SHIFT(float, hug_softmax_shift_f32, hug_exp_shift_f32)
SOFTMAX_SHIFT(double, hug_softmax_shift_f64, hug_exp_shift_f64)
