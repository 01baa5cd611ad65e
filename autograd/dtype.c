/* dtype.c: dtype/device tables and half-precision conversion. */
#include "dtype.h"


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
