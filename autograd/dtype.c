/* dtype.c: dtype/device tables and half-precision conversion. */
#include "dtype.h"

#include <string.h>

#include "../base/panic.h"

static const struct {
	const char *name;
	size_t size;
	int is_float;
} dtypes[] = {
	[DT_F32] = { "f32", 4, 1 },
	[DT_F64] = { "f64", 8, 1 },
	[DT_BF16] = { "bf16", 2, 1 },
	[DT_F16] = { "f16", 2, 1 },
	[DT_I32] = { "i32", 4, 0 },
	[DT_U8] = { "u8", 1, 0 },
};
_Static_assert(sizeof(dtypes) / sizeof(dtypes[0]) == DT_COUNT,
	       "dtype table out of step with enum dtype");

static const char *const device_names[] = {
	[DEV_CPU] = "cpu",
	[DEV_CUDA] = "cuda",
};
_Static_assert(sizeof(device_names) / sizeof(device_names[0]) == DEV_COUNT,
	       "device table out of step with enum device");

size_t dtype_size(enum dtype dt)
{
	HUG_ASSERT((unsigned)dt < DT_COUNT);
	return dtypes[dt].size;
}

const char *dtype_name(enum dtype dt)
{
	return (unsigned)dt < DT_COUNT ? dtypes[dt].name : "?";
}

int dtype_is_float(enum dtype dt)
{
	return (unsigned)dt < DT_COUNT && dtypes[dt].is_float;
}

const char *device_name(enum device dev)
{
	return (unsigned)dev < DEV_COUNT ? device_names[dev] : "?";
}

uint16_t f32_to_f16(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
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

float f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t e = (h >> 10) & 0x1fu;
	uint32_t m = h & 0x3ffu;
	uint32_t x;
	if (e == 0x1f) {
		x = sign | 0x7f800000u | (m << 13);
	} else if (e == 0) {
		if (m == 0) {
			x = sign;
		} else { /* subnormal: normalise */
			int s = 0;
			while (!(m & 0x400u)) {
				m <<= 1;
				s++;
			}
			x = sign | ((uint32_t)(113 - s) << 23) | ((m & 0x3ffu) << 13);
		}
	} else {
		x = sign | ((e + 112) << 23) | (m << 13);
	}
	float f;
	memcpy(&f, &x, 4);
	return f;
}
