// elementwise.cu: CUDA kernels for add and mul with broadcasting (and
// their reducing backward), scale, GeLU (tanh form) and dropout. Each
// mirrors autograd/cpu/elementwise.tmpl.h operation for operation in f32;
// bf16 tensors compute in f32 and round once on store. One exception: the
// gradient of a row vector broadcast over leading dims (a bias added after
// a row-parallel linear) is a column sum in double (colsum.cuh), where the
// CPU sums in f32.
#include <cmath>

#include "colsum.cuh"
#include "common.cuh"

extern "C" {
#include "../bcast.h"
}

// A broadcast binary op: struct ag_bcast (autograd/bcast.h), by value.
typedef struct ag_bcast Bcast;

struct Strides4 {
	int64_t v[4];
};

// Offset (in elements) of output element e (row-major over s) in an operand
// with element strides st (0 where broadcast).
__device__ __forceinline__ int64_t bcast_at(const int64_t *s, const int64_t *st, int64_t e)
{
	int64_t i3 = e % s[3];
	e /= s[3];
	int64_t i2 = e % s[2];
	e /= s[2];
	int64_t i1 = e % s[1], i0 = e / s[1];
	return i0 * st[0] + i1 * st[1] + i2 * st[2] + i3 * st[3];
}

template <typename T, bool MUL>
__global__ void binary_fwd_k(Bcast bc, const T *a, const T *b, T *out, int64_t n)
{
	CU_FOR(e, n) {
		float va = to_f(a[bcast_at(bc.shape, bc.sa, e)]);
		float vb = to_f(b[bcast_at(bc.shape, bc.sb, e)]);
		out[e] = from_f<T>(MUL ? va * vb : va + vb);
	}
}

// dx += dout (* other) where x has the output's shape: element e of dx is
// element e of the output.
template <typename T>
__global__ void binary_bwd_full_k(Bcast bc, Strides4 so, T *dx, const T *dout,
				  const T *other, int64_t n)
{
	CU_FOR(e, n) {
		float g = to_f(dout[e]);
		if (other)
			g = g * to_f(other[bcast_at(bc.shape, so.v, e)]);
		dx[e] = from_f<T>(to_f(dx[e]) + g);
	}
}

// The gradient terms of x, a block of the output's trailing dims broadcast
// over its leading ones, at output element e: dout (* other), f32 as the
// CPU forms them (column sums, colsum.cuh).
template <typename T> struct BcastRowTerms {
	static constexpr int N = 1;
	const T *dout, *other;
	Bcast bc;
	Strides4 so;
	__device__ void operator()(int64_t, int64_t e, double *s) const
	{
		float g = to_f(dout[e]);
		if (other)
			g = g * to_f(other[bcast_at(bc.shape, so.v, e)]);
		s[0] += g;
	}
};

// Whether x (strides sx, 0 on broadcast dims) is a block of the output's
// trailing dims broadcast over its leading ones: no dim where x is
// broadcast comes after one where it is kept (size-1 dims aside). Then
// x's element for output element e is e % numel(x).
static bool bcast_is_rows(const Bcast &bc, const Strides4 &sx)
{
	bool kept = false;
	for (int d = 0; d < 4; d++) {
		if (bc.shape[d] == 1)
			continue;
		if (sx.v[d])
			kept = true;
		else if (kept)
			return false;
	}
	return true;
}

// dx += dout (* other) summed over the dims where x was broadcast, for the
// patterns bcast_is_rows refuses (a broadcast row takes colsum_add): one
// thread per element of x gathers every output element it fed, in the
// output's row-major order (the CPU's order), so no atomics are needed.
// sx holds x's contiguous strides on its kept dims and 0 on broadcast ones.
template <typename T>
__global__ void binary_bwd_reduce_k(Bcast bc, Strides4 sx, Strides4 so, T *dx,
				    const T *dout, const T *other, int64_t nx)
{
	CU_FOR(ex, nx) {
		int64_t lo[4], hi[4];
		for (int d = 0; d < 4; d++) {
			if (sx.v[d] != 0) {
				lo[d] = ex / sx.v[d] % bc.shape[d];
				hi[d] = lo[d] + 1;
			} else {
				lo[d] = 0;
				hi[d] = bc.shape[d];
			}
		}
		float acc = to_f(dx[ex]);
		for (int64_t i0 = lo[0]; i0 < hi[0]; i0++)
			for (int64_t i1 = lo[1]; i1 < hi[1]; i1++)
				for (int64_t i2 = lo[2]; i2 < hi[2]; i2++)
					for (int64_t i3 = lo[3]; i3 < hi[3]; i3++) {
						int64_t o = ((i0 * bc.shape[1] + i1) * bc.shape[2] + i2) * bc.shape[3] + i3;
						float g = to_f(dout[o]);
						if (other)
							g = g * to_f(other[i0 * so.v[0] + i1 * so.v[1] +
									   i2 * so.v[2] + i3 * so.v[3]]);
						acc += g;
					}
		dx[ex] = from_f<T>(acc);
	}
}

static void binary_forward(struct ag_node *n, bool is_mul)
{
	Bcast bc = ag_bcast_of(n);
	int64_t numel = tensor_numel(n->out);
	if (!numel)
		return;
	CU_FLOAT_DISPATCH(n->out->dtype, T, {
		const T *a = (const T *)n->in[0]->data, *b = (const T *)n->in[1]->data;
		T *o = (T *)n->out->data;
		if (is_mul)
			binary_fwd_k<T, true><<<cu_blocks(numel), CU_THREADS, 0, cu_stream()>>>(bc, a, b, o, numel);
		else
			binary_fwd_k<T, false><<<cu_blocks(numel), CU_THREADS, 0, cu_stream()>>>(bc, a, b, o, numel);
	});
	CUDA_LAUNCH_CHECK();
}

static void binary_backward(struct ag_node *n, bool is_mul)
{
	Bcast bc = ag_bcast_of(n);
	int64_t numel = tensor_numel(n->out);
	for (int i = 0; i < 2; i++) {
		struct tensor *x = n->in[i];
		if (!x->grad)
			continue;
		const struct tensor *other = n->in[1 - i];
		Strides4 sx, so;
		for (int d = 0; d < 4; d++) {
			sx.v[d] = i == 0 ? bc.sa[d] : bc.sb[d];
			so.v[d] = i == 0 ? bc.sb[d] : bc.sa[d];
		}
		int64_t nx = tensor_numel(x);
		if (!nx)
			continue;
		CU_FLOAT_DISPATCH(x->dtype, T, {
			T *dx = (T *)x->grad->data;
			const T *dout = (const T *)n->out->grad->data;
			const T *ot = is_mul ? (const T *)other->data : nullptr;
			if (nx == numel)
				binary_bwd_full_k<T><<<cu_blocks(nx), CU_THREADS, 0, cu_stream()>>>(
					bc, so, dx, dout, ot, nx);
			else if (bcast_is_rows(bc, sx)) // dx (nx) += column sums of (numel / nx, nx)
				colsum_add(BcastRowTerms<T>{ dout, ot, bc, so }, numel / nx, nx,
					   ColsumDst<T, 1>{ { dx } });
			else
				binary_bwd_reduce_k<T><<<cu_blocks(nx), CU_THREADS, 0, cu_stream()>>>(
					bc, sx, so, dx, dout, ot, nx);
		});
		CUDA_LAUNCH_CHECK();
	}
}

extern "C" void cuda_add_forward(struct ag_node *n) { binary_forward(n, false); }
extern "C" void cuda_add_backward(struct ag_node *n) { binary_backward(n, false); }
extern "C" void cuda_mul_forward(struct ag_node *n) { binary_forward(n, true); }
extern "C" void cuda_mul_backward(struct ag_node *n) { binary_backward(n, true); }

// ---- scale ----

template <typename T>
__global__ void scale_k(int64_t n, float alpha, const T *x, T *y)
{
	CU_FOR(i, n)
		y[i] = from_f<T>(alpha * to_f(x[i]));
}

// y += alpha x
template <typename T>
__global__ void axpy_k(int64_t n, float alpha, const T *x, T *y)
{
	CU_FOR(i, n)
		y[i] = from_f<T>(to_f(y[i]) + alpha * to_f(x[i]));
}

extern "C" void cuda_scale_forward(struct ag_node *n)
{
	int64_t numel = tensor_numel(n->out);
	if (!numel)
		return;
	float a = (float)n->p.scale.alpha;
	CU_FLOAT_DISPATCH(n->out->dtype, T,
		scale_k<T><<<cu_blocks(numel), CU_THREADS, 0, cu_stream()>>>(
			numel, a, (const T *)n->in[0]->data, (T *)n->out->data));
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_scale_backward(struct ag_node *n)
{
	int64_t numel = tensor_numel(n->out);
	if (!numel)
		return;
	float a = (float)n->p.scale.alpha;
	CU_FLOAT_DISPATCH(n->out->dtype, T,
		axpy_k<T><<<cu_blocks(numel), CU_THREADS, 0, cu_stream()>>>(
			numel, a, (const T *)n->out->grad->data, (T *)n->in[0]->grad->data));
	CUDA_LAUNCH_CHECK();
}

// ---- GeLU, tanh form ----

#define GELU_C 0.79788456080286535588f // sqrt(2/pi)
#define GELU_A 0.044715f

template <typename T>
__global__ void gelu_fwd_k(int64_t n, const T *x, T *y)
{
	CU_FOR(i, n) {
		float v = to_f(x[i]);
		float u = GELU_C * (v + GELU_A * v * v * v);
		y[i] = from_f<T>(0.5f * v * (1.0f + tanhf(u)));
	}
}

template <typename T>
__global__ void gelu_bwd_k(int64_t n, const T *x, const T *dy, T *dx)
{
	CU_FOR(i, n) {
		float v = to_f(x[i]);
		float t = tanhf(GELU_C * (v + GELU_A * v * v * v));
		float du = GELU_C * (1.0f + 3.0f * GELU_A * v * v);
		float g = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du;
		dx[i] = from_f<T>(to_f(dx[i]) + to_f(dy[i]) * g);
	}
}

extern "C" void cuda_gelu_forward(struct ag_node *n)
{
	int64_t numel = tensor_numel(n->out);
	if (!numel)
		return;
	CU_FLOAT_DISPATCH(n->out->dtype, T,
		gelu_fwd_k<T><<<cu_blocks(numel), CU_THREADS, 0, cu_stream()>>>(
			numel, (const T *)n->in[0]->data, (T *)n->out->data));
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_gelu_backward(struct ag_node *n)
{
	int64_t numel = tensor_numel(n->out);
	if (!numel)
		return;
	CU_FLOAT_DISPATCH(n->out->dtype, T,
		gelu_bwd_k<T><<<cu_blocks(numel), CU_THREADS, 0, cu_stream()>>>(
			numel, (const T *)n->in[0]->data, (const T *)n->out->grad->data,
			(T *)n->in[0]->grad->data));
	CUDA_LAUNCH_CHECK();
}

// ---- dropout ----

// y = x * keep / (1 - p), keep = uniform(seed, offset + i) >= p: the same
// counter-based stream as the CPU (autograd/rng.h), so the masks are equal
// bit for bit. `acc`: y += instead of y = (the backward). __fmul_rn: the
// product is rounded before the add, as on the CPU (no FMA in the backward).
template <typename T>
__global__ void dropout_k(int64_t n, float pf, float scale, uint64_t seed,
			  uint64_t offset, const T *x, T *y, bool acc)
{
	CU_FOR(i, n) {
		float v = rng_uniform(seed, offset + (uint64_t)i) >= pf ? __fmul_rn(to_f(x[i]), scale) : 0.0f;
		y[i] = acc ? from_f<T>(to_f(y[i]) + v) : from_f<T>(v);
	}
}

static void dropout(struct ag_node *n, const struct tensor *src, struct tensor *dst,
		    bool acc)
{
	int64_t numel = tensor_numel(n->out);
	if (!numel)
		return;
	double p = n->p.dropout.p;
	float scale = (float)(1.0 / (1.0 - p)), pf = (float)p;
	CU_FLOAT_DISPATCH(n->out->dtype, T,
		dropout_k<T><<<cu_blocks(numel), CU_THREADS, 0, cu_stream()>>>(
			numel, pf, scale, n->p.dropout.seed, n->p.dropout.offset,
			(const T *)src->data, (T *)dst->data, acc));
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_dropout_forward(struct ag_node *n)
{
	dropout(n, n->in[0], n->out, false);
}

extern "C" void cuda_dropout_backward(struct ag_node *n)
{
	dropout(n, n->out->grad, n->in[0]->grad, true);
}
