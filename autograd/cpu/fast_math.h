/* fast_math.h: a branch-free f32 exp for the CPU kernels and the means to
 * run it wide. hug_expf has no libm call and no branches, so GCC inlines it
 * into `#pragma omp simd` loops and vectorises them; HUG_TARGET_CLONES
 * builds such a kernel for AVX-512, AVX2 and baseline x86-64 and picks one
 * at load time (the build itself targets baseline x86-64). FN(cpu_exp) and
 * FN(CPU_CLONES) bring both into the templates (instantiate.h) for the f32
 * instance only: the f64 instance keeps libm's exp, which gradient checks
 * and the f64 fixtures are measured against. */
#ifndef HUG_AUTOGRAD_CPU_FAST_MATH_H
#define HUG_AUTOGRAD_CPU_FAST_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* HUG_TARGET_CLONES before a function: GCC function multiversioning. Only
 * for loops without reductions: those give the same bits in every clone,
 * since C11 mode (-std=c11) contracts no multiply-add into an FMA. Empty
 * where the compiler or target lacks it, or defined empty by the build
 * (-DHUG_TARGET_CLONES=: the clang fuzz build, whose ifuncs do not link). */
#if !defined(HUG_TARGET_CLONES) && defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define HUG_TARGET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef HUG_TARGET_CLONES
#define HUG_TARGET_CLONES
#endif

/* c ? a : b through a bit mask. GCC keeps a float ?: as control flow,
 * which (with the constants jump threading then propagates into it) stops
 * the vectoriser everywhere but AVX-512; a mask select is one blend. */
static inline __attribute__((always_inline)) float hug_selectf(int c, float a, float b)
{
	uint32_t ab, bb, m = 0u - (uint32_t)(c != 0);
	memcpy(&ab, &a, sizeof(ab));
	memcpy(&bb, &b, sizeof(bb));
	ab = (ab & m) | (bb & ~m);
	memcpy(&a, &ab, sizeof(a));
	return a;
}

/* exp(x) in f32, branch-free: Cody-Waite reduction x = n ln2 + r and a
 * degree-7 polynomial, scaled by 2^n in two halves (2^128 is no float).
 * Contract (checked over all 2^32 inputs against exp((double)x)):
 * - error below 1 ulp wherever the result is a normal float;
 * - x > 88.7228394 (overflow) and +inf give +inf;
 * - x < -87.3365479 (results below FLT_MIN) and -inf give +0; at
 *   -87.3365479f itself the correctly rounded subnormal;
 * - NaN gives the same NaN.
 * NaN meets the clamp as the upper bound, so the conversion to int is
 * always defined; x below the range computes from 0, not from the bound,
 * whose subnormal result (replaced by 0 in the end) would cost a microcode
 * assist per vector: 5x slower on the masked (-inf) scores of attention.
 * Vectorised (SSE2, AVX2, AVX-512), the bits are the same. */
static inline __attribute__((always_inline)) float hug_expf(float x)
{
	const float log2e = 1.44269504088896341f;
	const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
	const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
	float xc = hug_selectf(x < 88.7228394f, x, 88.7228394f);
	xc = hug_selectf(xc >= -87.3365479f, xc, 0.0f);
	float t = xc * log2e + shifter;
	float n = t - shifter;
	float r = xc - n * ln2_hi;
	r = r - n * ln2_lo;
	float p = 1.98756912e-4f;
	p = p * r + 1.39819994e-3f;
	p = p * r + 8.33345205e-3f;
	p = p * r + 4.16657962e-2f;
	p = p * r + 1.66666657e-1f;
	p = p * r + 5.0e-1f;
	p = p * r * r + r + 1.0f;
	int32_t e = (int32_t)n, h = e >> 1;
	uint32_t b1 = (uint32_t)(h + 127) << 23, b2 = (uint32_t)(e - h + 127) << 23;
	float s1, s2;
	memcpy(&s1, &b1, sizeof(s1));
	memcpy(&s2, &b2, sizeof(s2));
	float y = p * s1 * s2;
	y = hug_selectf(x > 88.7228394f, __builtin_inff(), y);
	y = hug_selectf(x < -87.3365479f, 0.0f, y);
	return hug_selectf(x != x, x, y);
}

/* The templates' exp, FN(cpu_exp): hug_expf for f32, libm's exp for f64. */
static inline __attribute__((always_inline)) float cpu_exp_f32(float x)
{
	return hug_expf(x);
}

static inline __attribute__((always_inline)) double cpu_exp_f64(double x)
{
	return exp(x);
}

/* FN(CPU_CLONES) before a template function: HUG_TARGET_CLONES in the f32
 * instance, nothing in the f64 one. */
#define CPU_CLONES_f32 HUG_TARGET_CLONES
#define CPU_CLONES_f64

/* y[i] = exp(x[i] - shift) for i < n (y may be x; -inf gives 0): the
 * exponentials of a softmax or log-sum-exp row, shift its max. The f32
 * version uses hug_expf, vectorised and multiversioned; the f64 version
 * libm's exp. No reduction: the caller sums y in its own order. */
void hug_exp_shift_f32(int64_t n, const float *x, float shift, float *y);
void hug_exp_shift_f64(int64_t n, const double *x, double shift, double *y);

/* A softmax row: y[i] = exp(x[i] - shift) / sum_j exp(x[j] - shift) for
 * i < n (y may be x), shift the row's max (finite); the sum in double, in
 * index order, then one multiply by its rounded inverse. */
void hug_softmax_shift_f32(int64_t n, const float *x, float shift, float *y);
void hug_softmax_shift_f64(int64_t n, const double *x, double shift, double *y);

#endif
