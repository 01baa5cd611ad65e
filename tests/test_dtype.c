/* test_dtype.c: the dtype tables and the bf16/f16 <-> f32 conversions of
 * autograd/dtype.h: known bit patterns, round to nearest even (including
 * subnormals and overflow), NaN handling, exhaustive round trips of every
 * 16-bit pattern, and sweeps over f32 against references written here
 * from the definition (nearest representable value, ties to even). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../autograd/dtype.h"
#include "../base/alloc.h"
#include "harness.h"

static float from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static uint32_t to_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static int f16_is_nan(uint16_t h)
{
	return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu);
}

static int bf16_is_nan(uint16_t h)
{
	return (h & 0x7f80u) == 0x7f80u && (h & 0x7fu);
}

#define CHECK_F16(f, want)                                                     \
	do {                                                                   \
		uint16_t got_ = f32_to_f16(f);                                 \
		if (got_ != (want))                                            \
			test_fail_at(__FILE__, __LINE__,                       \
				     "f32_to_f16(%.9g) = 0x%04x, want 0x%04x", \
				     (double)(f), got_, (unsigned)(want));     \
	} while (0)

#define CHECK_BF16(f, want)                                                    \
	do {                                                                   \
		uint16_t got_ = f32_to_bf16(f);                                \
		if (got_ != (want))                                            \
			test_fail_at(__FILE__, __LINE__,                       \
				     "f32_to_bf16(%.9g) = 0x%04x, want 0x%04x", \
				     (double)(f), got_, (unsigned)(want));     \
	} while (0)

TEST(dtype_tables)
{
	CHECK(dtype_size(DT_F32) == 4 && dtype_size(DT_F64) == 8);
	CHECK(dtype_size(DT_BF16) == 2 && dtype_size(DT_F16) == 2);
	CHECK(dtype_size(DT_I32) == 4 && dtype_size(DT_U8) == 1);
	CHECK(strcmp(dtype_name(DT_F32), "f32") == 0);
	CHECK(strcmp(dtype_name(DT_F64), "f64") == 0);
	CHECK(strcmp(dtype_name(DT_BF16), "bf16") == 0);
	CHECK(strcmp(dtype_name(DT_F16), "f16") == 0);
	CHECK(strcmp(dtype_name(DT_I32), "i32") == 0);
	CHECK(strcmp(dtype_name(DT_U8), "u8") == 0);
	CHECK(dtype_is_float(DT_F32) && dtype_is_float(DT_F64));
	CHECK(dtype_is_float(DT_BF16) && dtype_is_float(DT_F16));
	CHECK(!dtype_is_float(DT_I32) && !dtype_is_float(DT_U8));
	CHECK(strcmp(device_name(DEV_CPU), "cpu") == 0);
	CHECK(strcmp(device_name(DEV_CUDA), "cuda") == 0);
}

TEST(f16_known_values)
{
	CHECK_F16(1.0f, 0x3c00);
	CHECK_F16(-2.5f, 0xc100);
	CHECK_F16(0.0f, 0x0000);
	CHECK_F16(-0.0f, 0x8000);
	CHECK_F16(65504.0f, 0x7bff);            /* the largest finite half */
	CHECK_F16(-65504.0f, 0xfbff);
	CHECK_F16(ldexpf(1, -14), 0x0400);      /* the smallest normal */
	CHECK_F16(ldexpf(1, -24), 0x0001);      /* the smallest subnormal */
	CHECK_F16(ldexpf(1023, -24), 0x03ff);   /* the largest subnormal */
	CHECK_F16(0.1f, 0x2e66);
	CHECK_F16(3.14159265f, 0x4248);
	CHECK_F16(-1.0f / 3.0f, 0xb555);
	CHECK_F16(1024.0f, 0x6400);

	/* ties go to the even neighbour */
	CHECK_F16(1.0f + ldexpf(1, -11), 0x3c00);     /* 1 and 1+2^-10 */
	CHECK_F16(1.0f + 3 * ldexpf(1, -11), 0x3c02); /* 1+2^-10 and 1+2^-9 */
	CHECK_F16(1.0f + ldexpf(1, -11) + ldexpf(1, -20), 0x3c01);
	CHECK_F16(2049.0f, 0x6800);                   /* 2048 and 2050 */
	CHECK_F16(2051.0f, 0x6802);                   /* 2050 and 2052 */
	CHECK_F16(ldexpf(1, -25), 0x0000);            /* 0 and 2^-24 */
	CHECK_F16(ldexpf(1, -25) * 1.0001f, 0x0001);
	CHECK_F16(3 * ldexpf(1, -25), 0x0002);        /* 1 and 2 (x 2^-24) */
	CHECK_F16(5 * ldexpf(1, -25), 0x0002);        /* 2 and 3 */
	CHECK_F16(ldexpf(1, -14) - ldexpf(1, -25), 0x0400); /* 0x3ff and 0x400 */
	CHECK_F16(ldexpf(1, -30), 0x0000);            /* underflow to zero */
	CHECK_F16(-ldexpf(1, -30), 0x8000);

	/* overflow */
	CHECK_F16(65519.0f, 0x7bff);             /* below the midpoint 65520 */
	CHECK_F16(nextafterf(65520.0f, 0), 0x7bff);
	CHECK_F16(65520.0f, 0x7c00);             /* the midpoint: to even = inf */
	CHECK_F16(-65520.0f, 0xfc00);
	CHECK_F16(1e6f, 0x7c00);
	CHECK_F16(FLT_MAX, 0x7c00);
	CHECK_F16(INFINITY, 0x7c00);
	CHECK_F16(-INFINITY, 0xfc00);

	/* NaN stays NaN, quiet or signalling, any payload */
	CHECK(f16_is_nan(f32_to_f16(NAN)));
	CHECK(f16_is_nan(f32_to_f16(-NAN)));
	CHECK(f16_is_nan(f32_to_f16(from_bits(0x7f800001u))));
	CHECK(f16_is_nan(f32_to_f16(from_bits(0xff800001u))));
	CHECK(f16_is_nan(f32_to_f16(from_bits(0x7fbfffffu))));

	/* and back */
	CHECK(f16_to_f32(0x3c00) == 1.0f);
	CHECK(f16_to_f32(0xc100) == -2.5f);
	CHECK(f16_to_f32(0x7bff) == 65504.0f);
	CHECK(f16_to_f32(0x0001) == ldexpf(1, -24));
	CHECK(f16_to_f32(0x03ff) == ldexpf(1023, -24));
	CHECK(f16_to_f32(0x0400) == ldexpf(1, -14));
	CHECK(f16_to_f32(0x3555) == 0.333251953125f);
	CHECK(f16_to_f32(0x7c00) == INFINITY);
	CHECK(f16_to_f32(0xfc00) == -INFINITY);
	CHECK(to_bits(f16_to_f32(0x8000)) == 0x80000000u);
	CHECK(isnan(f16_to_f32(0x7e00)));
	CHECK(isnan(f16_to_f32(0x7c01)));
	CHECK(isnan(f16_to_f32(0xfe00)));
}

TEST(bf16_known_values)
{
	CHECK_BF16(1.0f, 0x3f80);
	CHECK_BF16(-2.5f, 0xc020);
	CHECK_BF16(3.0f, 0x4040);
	CHECK_BF16(0.0f, 0x0000);
	CHECK_BF16(-0.0f, 0x8000);
	CHECK_BF16(0.1f, 0x3dcd);             /* 0x3dcccccd rounds up */
	CHECK_BF16(3.14159265f, 0x4049);      /* 0x40490fdb rounds down */

	/* ties go to the even neighbour */
	CHECK_BF16(1.0f + ldexpf(1, -8), 0x3f80);     /* 1 and 1+2^-7 */
	CHECK_BF16(1.0f + 3 * ldexpf(1, -8), 0x3f82);
	CHECK_BF16(1.0f + ldexpf(1, -8) + ldexpf(1, -20), 0x3f81);
	CHECK_BF16(from_bits(0x00008000u), 0x0000);   /* subnormal tie: even */
	CHECK_BF16(from_bits(0x00018000u), 0x0002);
	CHECK_BF16(from_bits(0x00008001u), 0x0001);
	CHECK_BF16(from_bits(0x00000001u), 0x0000);

	/* overflow: the rounding carries into the exponent */
	CHECK_BF16(FLT_MAX, 0x7f80);
	CHECK_BF16(from_bits(0x7f7f7fffu), 0x7f7f);
	CHECK_BF16(from_bits(0x7f7f8000u), 0x7f80);   /* tie, odd: up to inf */
	CHECK_BF16(-FLT_MAX, 0xff80);
	CHECK_BF16(INFINITY, 0x7f80);
	CHECK_BF16(-INFINITY, 0xff80);

	/* NaN stays NaN even when the payload is only in the low half */
	CHECK(bf16_is_nan(f32_to_bf16(NAN)));
	CHECK(bf16_is_nan(f32_to_bf16(from_bits(0x7f800001u))));
	CHECK(bf16_is_nan(f32_to_bf16(from_bits(0xff800001u))));
	CHECK(bf16_is_nan(f32_to_bf16(from_bits(0x7fffffffu))));
	CHECK(bf16_is_nan(f32_to_bf16(from_bits(0x7f80ffffu))));

	CHECK(bf16_to_f32(0x3f80) == 1.0f);
	CHECK(bf16_to_f32(0xc020) == -2.5f);
	CHECK(bf16_to_f32(0x7f80) == INFINITY);
	CHECK(to_bits(bf16_to_f32(0x0001)) == 0x00010000u);
	CHECK(isnan(bf16_to_f32(0x7fc0)));
}

TEST(f16_round_trip_all_patterns)
{
	int bad = 0, nan_bad = 0;
	for (uint32_t h = 0; h < 65536; h++) {
		float f = f16_to_f32((uint16_t)h);
		if (f16_is_nan((uint16_t)h)) {
			nan_bad += !isnan(f) || !f16_is_nan(f32_to_f16(f));
			continue;
		}
		if (f32_to_f16(f) != h) {
			if (bad++ < 5)
				test_fail_at(__FILE__, __LINE__,
					     "0x%04x -> %.9g -> 0x%04x", h,
					     (double)f, f32_to_f16(f));
		}
	}
	CHECK(bad == 0);
	CHECK(nan_bad == 0);
}

TEST(bf16_round_trip_all_patterns)
{
	int bad = 0, nan_bad = 0;
	for (uint32_t h = 0; h < 65536; h++) {
		float f = bf16_to_f32((uint16_t)h);
		if (to_bits(f) != h << 16)
			bad++;
		if (bf16_is_nan((uint16_t)h)) {
			nan_bad += !isnan(f) || !bf16_is_nan(f32_to_bf16(f));
			continue;
		}
		if (f32_to_bf16(f) != h)
			bad++;
	}
	CHECK(bad == 0);
	CHECK(nan_bad == 0);
}

/* ---- references from the definition ---- */

/* The finite non-negative halves 0x0000..0x7bff as doubles, in order. */
#define F16_FINITE 0x7c00
static double f16_value(uint32_t h)
{
	uint32_t e = h >> 10, m = h & 0x3ffu;
	return e ? ldexp(1024.0 + m, (int)e - 25) : ldexp((double)m, -24);
}

/* Nearest half to f (ties to even, overflow at the midpoint 65520 above
 * the largest finite half, NaN -> NaN), by search over the value table. */
static uint16_t f16_reference(float f, const double *table)
{
	if (isnan(f))
		return 0x7e00;
	uint16_t sign = signbit(f) ? 0x8000 : 0;
	double a = fabs((double)f);
	if (a >= 65520.0)
		return sign | 0x7c00;
	uint32_t lo = 0, hi = F16_FINITE - 1; /* table[lo] <= a < table[hi+1] */
	while (lo < hi) {
		uint32_t mid = (lo + hi + 1) / 2;
		if (table[mid] <= a)
			lo = mid;
		else
			hi = mid - 1;
	}
	uint32_t h = lo;
	/* past 65504 (and below 65520) the nearest finite half is 65504 */
	if (lo + 1 < F16_FINITE) {
		double dlo = a - table[lo], dhi = table[lo + 1] - a;
		if (dhi < dlo || (dhi == dlo && (lo & 1)))
			h = lo + 1;
	}
	return (uint16_t)(sign | h);
}

/* Nearest bf16 (ties to even; past the largest finite value the next step
 * up is 2^128 = infinity). */
static uint16_t bf16_reference(float f)
{
	uint32_t u = to_bits(f);
	if (isnan(f))
		return 0x7fc0;
	uint32_t sign = u & 0x80000000u, mag = u & 0x7fffffffu;
	if (mag == 0x7f800000u)
		return (uint16_t)((sign | mag) >> 16);
	uint32_t lo = mag >> 16;
	double a = fabs((double)f);
	double vlo = (double)from_bits(lo << 16);
	double vhi = lo + 1 == 0x7f80u ? ldexp(1.0, 128) : (double)from_bits((lo + 1) << 16);
	double dlo = a - vlo, dhi = vhi - a;
	if (dhi < dlo || (dhi == dlo && (lo & 1)))
		lo++;
	return (uint16_t)((sign >> 16) | lo);
}

TEST(f16_matches_reference_over_f32)
{
	double *table = hug_malloc(F16_FINITE * sizeof(double));
	for (uint32_t h = 0; h < F16_FINITE; h++)
		table[h] = f16_value(h);
	int bad = 0;
	/* every midpoint between neighbouring halves, and one f32 ulp either
	 * side of it, both signs */
	for (uint32_t h = 0; h + 1 < F16_FINITE; h++) {
		float mid = (float)((table[h] + table[h + 1]) / 2); /* exact */
		const float probes[] = { mid, nextafterf(mid, 0), nextafterf(mid, INFINITY),
					 (float)table[h] };
		for (int k = 0; k < 4; k++)
			for (int s = 0; s < 2; s++) {
				float f = s ? -probes[k] : probes[k];
				uint16_t got = f32_to_f16(f), want = f16_reference(f, table);
				if (got != want && bad++ < 5)
					test_fail_at(__FILE__, __LINE__,
						     "f32_to_f16(%a) = 0x%04x, want 0x%04x",
						     (double)f, got, want);
			}
	}
	/* a sweep over all f32 bit patterns with a prime stride */
	for (uint64_t u = 0; u < (1ull << 32); u += 251) {
		float f = from_bits((uint32_t)u);
		uint16_t got = f32_to_f16(f), want = f16_reference(f, table);
		if (isnan(f) ? !f16_is_nan(got) : got != want) {
			if (bad++ < 5)
				test_fail_at(__FILE__, __LINE__,
					     "f32_to_f16(%a) = 0x%04x, want 0x%04x",
					     (double)f, got, want);
		}
	}
	CHECK(bad == 0);
	hug_free(table);
}

TEST(bf16_matches_reference_over_f32)
{
	int bad = 0;
	/* every tie (low half exactly 0x8000) and its neighbours */
	for (uint32_t hi = 0; hi < 65536; hi++) {
		const uint32_t lows[] = { 0x8000u, 0x7fffu, 0x8001u, 0x0000u, 0xffffu };
		for (int k = 0; k < 5; k++) {
			float f = from_bits(hi << 16 | lows[k]);
			uint16_t got = f32_to_bf16(f);
			if (isnan(f) ? !bf16_is_nan(got) : got != bf16_reference(f)) {
				if (bad++ < 5)
					test_fail_at(__FILE__, __LINE__,
						     "f32_to_bf16(0x%08x) = 0x%04x, want 0x%04x",
						     to_bits(f), got, bf16_reference(f));
			}
		}
	}
	for (uint64_t u = 0; u < (1ull << 32); u += 251) {
		float f = from_bits((uint32_t)u);
		uint16_t got = f32_to_bf16(f);
		if (isnan(f) ? !bf16_is_nan(got) : got != bf16_reference(f)) {
			if (bad++ < 5)
				test_fail_at(__FILE__, __LINE__,
					     "f32_to_bf16(0x%08x) = 0x%04x, want 0x%04x",
					     (uint32_t)u, got, bf16_reference(f));
		}
	}
	CHECK(bad == 0);
}

#ifdef __FLT16_MANT_DIG__
/* Where the compiler has _Float16, its conversions are one more
 * independent reference. */
TEST(f16_matches_compiler_float16)
{
	int bad = 0;
	for (uint64_t u = 0; u < (1ull << 32); u += 509) {
		float f = from_bits((uint32_t)u);
		_Float16 c = (_Float16)f;
		uint16_t want;
		memcpy(&want, &c, 2);
		uint16_t got = f32_to_f16(f);
		if (isnan(f) ? !f16_is_nan(got) : got != want) {
			if (bad++ < 5)
				test_fail_at(__FILE__, __LINE__,
					     "f32_to_f16(%a) = 0x%04x, _Float16 0x%04x",
					     (double)f, got, want);
		}
	}
	for (uint32_t h = 0; h < 65536; h++) {
		uint16_t hb = (uint16_t)h;
		_Float16 c;
		memcpy(&c, &hb, 2);
		float want = (float)c, got = f16_to_f32(hb);
		if (isnan(want) ? !isnan(got) : to_bits(got) != to_bits(want))
			bad++;
	}
	CHECK(bad == 0);
}
#endif
