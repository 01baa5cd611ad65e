// layout.cu: CUDA kernels that move data: strided copies (the backend's
// copy and the contiguous op), fill, accumulate, the backward of the views
// (view, permute, slice: a strided add), and dtype casts. They take every
// float dtype (f32, f64, bf16, f16; copy and fill also i32 and u8) and
// compute through double with the CPU's rounding (autograd/cpu/layout.c).
#include "common.cuh"

// dst (shape/strides d) = src (s), n elements of es bytes.
__global__ void copy_k(Shape4 s, Shape4 d, int es, const char *src, char *dst, int64_t n)
{
	CU_FOR(e, n) {
		int64_t so = offset4(s, e), dof = offset4(d, e);
		switch (es) {
		case 1: dst[dof] = src[so]; break;
		case 2: ((uint16_t *)dst)[dof] = ((const uint16_t *)src)[so]; break;
		case 4: ((uint32_t *)dst)[dof] = ((const uint32_t *)src)[so]; break;
		default: ((uint64_t *)dst)[dof] = ((const uint64_t *)src)[so]; break;
		}
	}
}

__global__ void fill_k(Shape4 s, int dt, void *p, double v, int64_t n)
{
	CU_FOR(e, n)
		st_any(dt, p, offset4(s, e), v);
}

// dst (strides d.st, shape d.n) += src (contiguous, same shape).
__global__ void strided_add_k(Shape4 d, int dt, void *dst, const void *src, int64_t n)
{
	CU_FOR(e, n) {
		int64_t o = offset4(d, e);
		st_any(dt, dst, o, ld_any(dt, dst, o) + ld_any(dt, src, e));
	}
}

// dst[i] = src[i] (accumulate: dst[i] += src[i]) converting dtypes; sums
// are formed in double, then rounded once to dst's dtype, as the CPU does.
__global__ void convert_k(int sdt, const void *src, int ddt, void *dst, int64_t n,
			  bool accumulate)
{
	CU_FOR(i, n) {
		double v = ld_any(sdt, src, i);
		st_any(ddt, dst, i, accumulate ? ld_any(ddt, dst, i) + v : v);
	}
}

extern "C" void cuda_copy(struct tensor *dst, const struct tensor *src)
{
	HUG_ASSERT(dst->dtype == src->dtype && tensor_same_shape(dst, src));
	int64_t n = tensor_numel(src);
	if (!n)
		return;
	Shape4 s = shape4(src->ndim, src->shape, src->stride);
	Shape4 d = shape4(dst->ndim, dst->shape, dst->stride);
	int es = (int)dtype_size(src->dtype);
	copy_k<<<cu_blocks(n), CU_THREADS, 0, cu_stream()>>>(
		s, d, es, (const char *)src->data, (char *)dst->data, n);
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_fill(struct tensor *t, double value)
{
	int64_t n = tensor_numel(t);
	if (!n)
		return;
	Shape4 s = shape4(t->ndim, t->shape, t->stride);
	fill_k<<<cu_blocks(n), CU_THREADS, 0, cu_stream()>>>(s, (int)t->dtype, t->data, value, n);
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_accumulate(struct tensor *dst, const struct tensor *src)
{
	HUG_ASSERT(dst->dtype == src->dtype && tensor_numel(dst) == tensor_numel(src));
	int64_t n = tensor_numel(dst);
	if (!n)
		return;
	convert_k<<<cu_blocks(n), CU_THREADS, 0, cu_stream()>>>(
		(int)src->dtype, src->data, (int)dst->dtype, dst->data, n, true);
	CUDA_LAUNCH_CHECK();
}

// dst (strides dst_stride) += src (contiguous), both of `shape`.
static void strided_add(enum dtype dt, void *dst, const int64_t *dst_stride,
			const void *src, int ndim, const int64_t *shape)
{
	Shape4 d = shape4(ndim, shape, dst_stride);
	int64_t n = d.n[0] * d.n[1] * d.n[2] * d.n[3];
	if (!n)
		return;
	strided_add_k<<<cu_blocks(n), CU_THREADS, 0, cu_stream()>>>(d, (int)dt, dst, src, n);
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_contiguous_forward(struct ag_node *n)
{
	cuda_copy(n->out, n->in[0]);
}

extern "C" void cuda_contiguous_backward(struct ag_node *n)
{
	cuda_accumulate(n->in[0]->grad, n->out->grad);
}

extern "C" void cuda_view_backward(struct ag_node *n)
{
	cuda_accumulate(n->in[0]->grad, n->out->grad);
}

/* x->grad += o->grad along o's layout. When x is contiguous this reads o's
 * own strides and offset from x's data, so it scatters any view o of a
 * contiguous x, not only a permute (autograd/tape.c's view chains rely
 * on this); otherwise o is x permuted by the node's perm. */
extern "C" void cuda_permute_backward(struct ag_node *n)
{
	const struct tensor *x = n->in[0], *o = n->out;
	if (tensor_is_contiguous(x)) {
		ptrdiff_t off = (const char *)o->data - (const char *)x->data;
		strided_add(x->dtype, (char *)x->grad->data + off, o->stride, o->grad->data,
			    o->ndim, o->shape);
		return;
	}
	int64_t cs[TENSOR_MAX_DIMS], st[TENSOR_MAX_DIMS];
	tensor_contiguous_strides(x->ndim, x->shape, cs);
	for (int d = 0; d < o->ndim; d++)
		st[d] = cs[n->p.permute.perm[d]];
	strided_add(x->dtype, x->grad->data, st, o->grad->data, o->ndim, o->shape);
}

extern "C" void cuda_slice_backward(struct ag_node *n)
{
	const struct tensor *x = n->in[0], *o = n->out;
	int64_t cs[TENSOR_MAX_DIMS];
	tensor_contiguous_strides(x->ndim, x->shape, cs);
	char *base = (char *)x->grad->data +
		     n->p.slice.start * cs[n->p.slice.dim] * (int64_t)dtype_size(x->dtype);
	strided_add(x->dtype, base, cs, o->grad->data, o->ndim, o->shape);
}

extern "C" void cuda_cast_forward(struct ag_node *n)
{
	int64_t numel = tensor_numel(n->out);
	if (!numel)
		return;
	convert_k<<<cu_blocks(numel), CU_THREADS, 0, cu_stream()>>>(
		(int)n->in[0]->dtype, n->in[0]->data, (int)n->out->dtype, n->out->data,
		numel, false);
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_cast_backward(struct ag_node *n)
{
	int64_t numel = tensor_numel(n->out);
	if (!numel)
		return;
	convert_k<<<cu_blocks(numel), CU_THREADS, 0, cu_stream()>>>(
		(int)n->out->dtype, n->out->grad->data, (int)n->in[0]->dtype,
		n->in[0]->grad->data, numel, true);
	CUDA_LAUNCH_CHECK();
}
