/* tensor.c: tensor creation in arenas, shape helpers and host element access. */
#include "tensor.h"

#include <stdio.h>
#include <string.h>

#include "../base/panic.h"

void tensor_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride)
{
	int64_t s = 1;
	for (int d = ndim - 1; d >= 0; d--) {
		stride[d] = s;
		s *= shape[d];
	}
}

static struct tensor *tensor_header(struct arena *a, enum dtype dt, int ndim,
				    const int64_t *shape)
{
	HUG_ASSERT(ndim >= 0 && ndim <= TENSOR_MAX_DIMS);
	struct tensor *t = arena_alloc_meta(a, sizeof(*t));
	memset(t, 0, sizeof(*t));
	t->dtype = dt;
	t->device = a->allocator->device;
	t->ndim = ndim;
	for (int d = 0; d < TENSOR_MAX_DIMS; d++)
		t->shape[d] = 1;
	for (int d = 0; d < ndim; d++) {
		HUG_ASSERT(shape[d] >= 0);
		t->shape[d] = shape[d];
	}
	tensor_contiguous_strides(ndim, t->shape, t->stride);
	return t;
}

struct tensor *tensor_new(struct arena *a, enum dtype dt, int ndim,
			  const int64_t *shape)
{
	struct tensor *t = tensor_header(a, dt, ndim, shape);
	t->data = arena_alloc(a, tensor_nbytes(t));
	return t;
}

struct tensor *tensor_zeros(struct arena *a, enum dtype dt, int ndim,
			    const int64_t *shape)
{
	struct tensor *t = tensor_header(a, dt, ndim, shape);
	t->data = arena_calloc(a, tensor_nbytes(t));
	return t;
}

struct tensor *tensor_new_like(struct arena *a, const struct tensor *like)
{
	return tensor_new(a, like->dtype, like->ndim, like->shape);
}

void tensor_set_requires_grad(struct tensor *t, struct arena *grad_arena)
{
	HUG_ASSERT(t->node == NULL && dtype_is_float(t->dtype));
	HUG_ASSERT(grad_arena->allocator->device == t->device);
	t->requires_grad = true;
	if (!t->grad)
		t->grad = tensor_zeros(grad_arena, t->dtype, t->ndim, t->shape);
}

int64_t tensor_numel(const struct tensor *t)
{
	int64_t n = 1;
	for (int d = 0; d < t->ndim; d++)
		n *= t->shape[d];
	return n;
}

size_t tensor_nbytes(const struct tensor *t)
{
	return (size_t)tensor_numel(t) * dtype_size(t->dtype);
}

bool tensor_is_contiguous(const struct tensor *t)
{
	int64_t s = 1;
	for (int d = t->ndim - 1; d >= 0; d--) {
		if (t->shape[d] != 1 && t->stride[d] != s)
			return false;
		s *= t->shape[d];
	}
	return true;
}

bool tensor_same_shape(const struct tensor *a, const struct tensor *b)
{
	if (a->ndim != b->ndim)
		return false;
	for (int d = 0; d < a->ndim; d++)
		if (a->shape[d] != b->shape[d])
			return false;
	return true;
}

char *tensor_describe(const struct tensor *t, char *buf, size_t n)
{
	size_t off = 0;
	off += (size_t)snprintf(buf + off, n - off, "[");
	for (int d = 0; d < t->ndim && off < n; d++)
		off += (size_t)snprintf(buf + off, n - off, "%s%lld",
					d ? ", " : "", (long long)t->shape[d]);
	if (off < n)
		snprintf(buf + off, n - off, "] %s", dtype_name(t->dtype));
	return buf;
}

/* Offset in elements of the i-th logical element (row-major order). */
static int64_t logical_offset(const struct tensor *t, int64_t i)
{
	int64_t off = 0;
	for (int d = t->ndim - 1; d >= 0; d--) {
		off += (i % t->shape[d]) * t->stride[d];
		i /= t->shape[d];
	}
	return off;
}

static double load(const struct tensor *t, int64_t off)
{
	const char *p = (const char *)t->data;
	switch (t->dtype) {
	case DT_F32: return ((const float *)p)[off];
	case DT_F64: return ((const double *)p)[off];
	case DT_BF16: return bf16_to_f32(((const uint16_t *)p)[off]);
	case DT_F16: return f16_to_f32(((const uint16_t *)p)[off]);
	case DT_I32: return ((const int32_t *)p)[off];
	case DT_U8: return ((const uint8_t *)p)[off];
	default: hug_panic("bad dtype %d", (int)t->dtype);
	}
}

static void store(struct tensor *t, int64_t off, double v)
{
	char *p = (char *)t->data;
	switch (t->dtype) {
	case DT_F32: ((float *)p)[off] = (float)v; break;
	case DT_F64: ((double *)p)[off] = v; break;
	case DT_BF16: ((uint16_t *)p)[off] = f32_to_bf16((float)v); break;
	case DT_F16: ((uint16_t *)p)[off] = f32_to_f16((float)v); break;
	case DT_I32: ((int32_t *)p)[off] = (int32_t)v; break;
	case DT_U8: ((uint8_t *)p)[off] = (uint8_t)v; break;
	default: hug_panic("bad dtype %d", (int)t->dtype);
	}
}

void tensor_read_f64(const struct tensor *t, double *out)
{
	HUG_ASSERT(t->device == DEV_CPU);
	int64_t n = tensor_numel(t);
	for (int64_t i = 0; i < n; i++)
		out[i] = load(t, logical_offset(t, i));
}

void tensor_write_f64(struct tensor *t, const double *in)
{
	HUG_ASSERT(t->device == DEV_CPU);
	int64_t n = tensor_numel(t);
	for (int64_t i = 0; i < n; i++)
		store(t, logical_offset(t, i), in[i]);
}

void tensor_fill(struct tensor *t, double value)
{
	HUG_ASSERT(t->device == DEV_CPU);
	int64_t n = tensor_numel(t);
	for (int64_t i = 0; i < n; i++)
		store(t, logical_offset(t, i), value);
}
