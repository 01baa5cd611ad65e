/* dtype.h: element types and devices, their names and sizes, and the
 * bf16/f16 <-> f32 conversions (round to nearest even) used on the host. */
#ifndef HUG_AUTOGRAD_DTYPE_H
#define HUG_AUTOGRAD_DTYPE_H

#include <stddef.h>
#include <stdint.h>

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

/* bf16 is the upper half of an f32; conversion rounds to nearest even and
 * keeps NaN a (quiet) NaN. */
static inline uint16_t f32_to_bf16(float f)
{
	union { float f; uint32_t u; } v = { .f = f };
	if ((v.u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((v.u >> 16) | 0x40u);
	v.u += 0x7fffu + ((v.u >> 16) & 1u);
	return (uint16_t)(v.u >> 16);
}

static inline float bf16_to_f32(uint16_t h)
{
	union { uint32_t u; float f; } v = { .u = (uint32_t)h << 16 };
	return v.f;
}

/* IEEE half precision; rounds to nearest even, overflows to infinity. */
uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);

#endif
