/* dtype.h: element types and devices, their names and sizes, and the
 * bf16/f16 <-> f32 conversions (round to nearest even), shared by the
 * host code and the CUDA kernels. */
#ifndef HUG_AUTOGRAD_DTYPE_H
#define HUG_AUTOGRAD_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum dtype {
	DT_F32,
	DT_F64,
	DT_BF16,
	DT_F16,
	DT_I32,
	DT_U8,
	DT_COUNT
};

enum device {
	DEV_CPU,
	DEV_CUDA,
	DEV_COUNT
};

/* Bytes per element of `dt`. */
size_t dtype_size(enum dtype dt);
/* Lower-case name: "f32", "f64", "bf16", "f16", "i32", "u8". */
const char *dtype_name(enum dtype dt);
/* True for f32, f64, bf16 and f16. */
int dtype_is_float(enum dtype dt);
/* "cpu" or "cuda". */
const char *device_name(enum device dev);

/* The conversions below are plain C shared with the CUDA kernels (nvcc
 * compiles them for the device too), so both backends round alike. */
#ifdef __CUDACC__
#define HUG_HOST_DEVICE __host__ __device__
#else
#define HUG_HOST_DEVICE
#endif

static inline HUG_HOST_DEVICE uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return u;
}

static inline HUG_HOST_DEVICE float f32_from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

/* bf16 is the upper half of an f32; conversion rounds to nearest even and
 * keeps NaN a (quiet) NaN. */
static inline HUG_HOST_DEVICE uint16_t f32_to_bf16(float f)
{
	uint32_t u = f32_bits(f);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 0x40u);
	u += 0x7fffu + ((u >> 16) & 1u);
	return (uint16_t)(u >> 16);
}

static inline HUG_HOST_DEVICE float bf16_to_f32(uint16_t h)
{
	return f32_from_bits((uint32_t)h << 16);
}

/* IEEE half precision; rounds to nearest even, overflows to infinity. */
static inline HUG_HOST_DEVICE uint16_t f32_to_f16(float f)
{
	uint32_t x = f32_bits(f);
	uint32_t sign = (x >> 16) & 0x8000u;
	uint32_t absx = x & 0x7fffffffu;
	if (absx > 0x7f800000u) /* NaN */
		return (uint16_t)(sign | 0x7e00u);
	if (absx >= 0x477ff000u) /* rounds to >= 65520: infinity */
		return (uint16_t)(sign | 0x7c00u);
	if (absx < 0x38800000u) { /* below the smallest normal half: subnormal */
		if (absx < 0x33000000u) /* below half the smallest subnormal */
			return (uint16_t)sign;
		uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
		int shift = 126 - (int)(absx >> 23); /* value = q * 2^-24 */
		uint32_t q = mant >> shift;
		uint32_t rem = mant & ((1u << shift) - 1);
		uint32_t half = 1u << (shift - 1);
		if (rem > half || (rem == half && (q & 1u)))
			q++;
		return (uint16_t)(sign | q);
	}
	uint32_t e = (absx >> 23) - 112; /* rebias 127 -> 15 */
	uint32_t m = absx & 0x7fffffu;
	uint32_t h = (e << 10) | (m >> 13);
	uint32_t rem = m & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
		h++; /* may carry into the exponent, which is correct */
	return (uint16_t)(sign | h);
}

/* Exact. */
static inline HUG_HOST_DEVICE float f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t e = (h >> 10) & 0x1fu;
	uint32_t m = h & 0x3ffu;
	if (e == 0x1f) /* infinity or NaN */
		return f32_from_bits(sign | 0x7f800000u | (m << 13));
	if (e == 0) { /* zero or subnormal: normalise */
		if (m == 0)
			return f32_from_bits(sign);
		int s = 0;
		while (!(m & 0x400u)) {
			m <<= 1;
			s++;
		}
		return f32_from_bits(sign | ((uint32_t)(113 - s) << 23) | ((m & 0x3ffu) << 13));
	}
	return f32_from_bits(sign | ((e + 112) << 23) | (m << 13));
}

#endif
