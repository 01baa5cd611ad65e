/* layout.c: CPU kernels that move data: contiguous copies of strided views,
 * the backward of views (view, permute, slice), and dtype casts. */
#include <stddef.h>
#include <string.h>

#include "cpu_kernels.h"
#include "../../base/panic.h"

#define CPU_TEMPLATE "layout.tmpl.h"
#include "instantiate.h"

/* Pads (ndim, shape, stride) to 4 dims with leading size-1 dims. */
static void pad4(int ndim, const int64_t *shape, const int64_t *stride,
		 int64_t *s4, int64_t *st4)
{
	for (int d = 0; d < 4; d++) {
		int src = d - (4 - ndim);
		s4[d] = src >= 0 ? shape[src] : 1;
		st4[d] = src >= 0 ? stride[src] : 0;
	}
}

void cpu_strided_add(enum dtype dt, void *dst, const int64_t *dst_stride,
		     const void *src, int ndim, const int64_t *shape)
{
	int64_t s4[4], st4[4];
	pad4(ndim, shape, dst_stride, s4, st4);
	CPU_DISPATCH(dt, strided_add, dst, st4, src, s4);
}

void cpu_memcpy(void *dst, const void *src, size_t bytes)
{
	if (bytes)
		memcpy(dst, src, bytes);
}

void cpu_copy(struct tensor *dst, const struct tensor *src)
{
	size_t es = dtype_size(src->dtype);
	int64_t s4[4], ss[4], ds[4];
	pad4(src->ndim, src->shape, src->stride, s4, ss);
	pad4(dst->ndim, dst->shape, dst->stride, s4, ds);
	int64_t outer = s4[0] * s4[1] * s4[2];
	const char *sp = src->data;
	char *dp = dst->data;
#pragma omp parallel for if (outer * s4[3] >= CPU_PAR_MIN)
	for (int64_t o = 0; o < outer; o++) {
		int64_t i0 = o / (s4[1] * s4[2]), i1 = o / s4[2] % s4[1], i2 = o % s4[2];
		const char *ps = sp + (i0 * ss[0] + i1 * ss[1] + i2 * ss[2]) * (int64_t)es;
		char *pd = dp + (i0 * ds[0] + i1 * ds[1] + i2 * ds[2]) * (int64_t)es;
		if (ss[3] == 1 && ds[3] == 1) {
			memcpy(pd, ps, (size_t)s4[3] * es);
		} else {
			for (int64_t i = 0; i < s4[3]; i++)
				memcpy(pd + i * ds[3] * (int64_t)es, ps + i * ss[3] * (int64_t)es, es);
		}
	}
}

void cpu_contiguous_forward(struct ag_node *n)
{
	cpu_copy(n->out, n->in[0]);
}

/* in->grad += out->grad element for element (same logical order). */
void cpu_contiguous_backward(struct ag_node *n)
{
	cpu_accumulate(n->in[0]->grad, n->out->grad);
}

void cpu_view_backward(struct ag_node *n)
{
	cpu_accumulate(n->in[0]->grad, n->out->grad);
}

/* x->grad += o->grad along o's layout. When x is contiguous this reads o's
 * own strides and offset from x's data, so it scatters any view o of a
 * contiguous x, not only a permute (autograd/tape.c's view chains rely
 * on this); otherwise o is x permuted by the node's perm. */
void cpu_permute_backward(struct ag_node *n)
{
	const struct tensor *x = n->in[0], *o = n->out;
	if (tensor_is_contiguous(x)) {
		ptrdiff_t off = (const char *)o->data - (const char *)x->data;
		cpu_strided_add(x->dtype, (char *)x->grad->data + off, o->stride, o->grad->data,
			    o->ndim, o->shape);
		return;
	}
	int64_t cs[TENSOR_MAX_DIMS], st[TENSOR_MAX_DIMS];
	tensor_contiguous_strides(x->ndim, x->shape, cs);
	for (int d = 0; d < o->ndim; d++)
		st[d] = cs[n->p.permute.perm[d]];
	cpu_strided_add(x->dtype, x->grad->data, st, o->grad->data, o->ndim, o->shape);
}

void cpu_slice_backward(struct ag_node *n)
{
	const struct tensor *x = n->in[0], *o = n->out;
	int64_t cs[TENSOR_MAX_DIMS];
	tensor_contiguous_strides(x->ndim, x->shape, cs);
	char *base = (char *)x->grad->data +
		     n->p.slice.start * cs[n->p.slice.dim] * (int64_t)dtype_size(x->dtype);
	cpu_strided_add(x->dtype, base, cs, o->grad->data, o->ndim, o->shape);
}

/* Element i of a contiguous float buffer as a double. */
static double load(enum dtype dt, const void *p, int64_t i)
{
	switch (dt) {
	case DT_F32: return ((const float *)p)[i];
	case DT_F64: return ((const double *)p)[i];
	case DT_BF16: return bf16_to_f32(((const uint16_t *)p)[i]);
	case DT_F16: return f16_to_f32(((const uint16_t *)p)[i]);
	default: hug_panic("cast: bad dtype %s", dtype_name(dt));
	}
}

static void store(enum dtype dt, void *p, int64_t i, double v)
{
	switch (dt) {
	case DT_F32: ((float *)p)[i] = (float)v; break;
	case DT_F64: ((double *)p)[i] = v; break;
	case DT_BF16: ((uint16_t *)p)[i] = f32_to_bf16((float)v); break;
	case DT_F16: ((uint16_t *)p)[i] = f32_to_f16((float)v); break;
	default: hug_panic("cast: bad dtype %s", dtype_name(dt));
	}
}

/* dst[i] = src[i] (accumulate: dst[i] += src[i]) converting dtypes; sums
 * are formed in double, then rounded once to dst's dtype. */
static void convert(enum dtype sdt, const void *src, enum dtype ddt, void *dst,
		    int64_t n, bool accumulate)
{
#pragma omp parallel for if (n >= CPU_PAR_MIN)
	for (int64_t i = 0; i < n; i++) {
		double v = load(sdt, src, i);
		store(ddt, dst, i, accumulate ? load(ddt, dst, i) + v : v);
	}
}

void cpu_cast_forward(struct ag_node *n)
{
	convert(n->in[0]->dtype, n->in[0]->data, n->out->dtype, n->out->data,
		tensor_numel(n->out), false);
}

void cpu_cast_backward(struct ag_node *n)
{
	convert(n->out->dtype, n->out->grad->data, n->in[0]->dtype,
		n->in[0]->grad->data, tensor_numel(n->out), true);
}
