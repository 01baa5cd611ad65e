// silu.cu: SiLU and the fused SwiGLU activation silu(gate) * up
// (autograd/cpu/silu.tmpl.h): silu(x) = x / (1 + exp(-x)) in f32. bf16
// computes in f32 and rounds once on store, except that SwiGLU rounds
// silu(gate) to bf16 before the product, as transformers' bf16
// act_fn(gate_proj(x)) * up_proj(x) does (and its up gradient uses that
// rounded value).
#include <cmath>

#include "common.cuh"

template <typename T> __device__ __forceinline__ float round_to(float v)
{
	return to_f(from_f<T>(v));
}

__device__ __forceinline__ float silu_f(float v)
{
	return v / (1.0f + expf(-v));
}

// silu'(v) = s + v s (1 - s), s (1 - s) = 1 / (2 + e + 1/e), e = exp(-v)
__device__ __forceinline__ float silu_grad(float v)
{
	float e = expf(-v);
	return 1.0f / (1.0f + e) + v / (2.0f + e + 1.0f / e);
}

template <typename T>
__global__ void silu_fwd_k(int64_t n, const T *x, T *y)
{
	CU_FOR(i, n) y[i] = from_f<T>(silu_f(to_f(x[i])));
}

template <typename T>
__global__ void silu_bwd_k(int64_t n, const T *x, const T *dy, T *dx)
{
	CU_FOR(i, n) dx[i] = from_f<T>(to_f(dx[i]) + to_f(dy[i]) * silu_grad(to_f(x[i])));
}

template <typename T>
__global__ void swiglu_fwd_k(int64_t n, const T *g, const T *u, T *y)
{
	CU_FOR(i, n) y[i] = from_f<T>(round_to<T>(silu_f(to_f(g[i]))) * to_f(u[i]));
}

// dg += dy u silu'(g) and du += dy round_T(silu(g)), either may be NULL
template <typename T>
__global__ void swiglu_bwd_k(int64_t n, const T *g, const T *u, const T *dy, T *dg, T *du)
{
	CU_FOR(i, n) {
		float v = to_f(g[i]), d = to_f(dy[i]);
		if (dg)
			dg[i] = from_f<T>(to_f(dg[i]) + d * to_f(u[i]) * silu_grad(v));
		if (du)
			du[i] = from_f<T>(to_f(du[i]) + d * round_to<T>(silu_f(v)));
	}
}

extern "C" void cuda_silu_forward(struct ag_node *n)
{
	int64_t numel = tensor_numel(n->out);
	if (!numel)
		return;
	CU_FLOAT_DISPATCH(n->out->dtype, T,
		silu_fwd_k<T><<<cu_blocks(numel), CU_THREADS, 0, cu_stream()>>>(
			numel, (const T *)n->in[0]->data, (T *)n->out->data));
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_silu_backward(struct ag_node *n)
{
	int64_t numel = tensor_numel(n->out);
	if (!numel)
		return;
	CU_FLOAT_DISPATCH(n->out->dtype, T,
		silu_bwd_k<T><<<cu_blocks(numel), CU_THREADS, 0, cu_stream()>>>(
			numel, (const T *)n->in[0]->data, (const T *)n->out->grad->data,
			(T *)n->in[0]->grad->data));
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_swiglu_forward(struct ag_node *n)
{
	int64_t numel = tensor_numel(n->out);
	if (!numel)
		return;
	CU_FLOAT_DISPATCH(n->out->dtype, T,
		swiglu_fwd_k<T><<<cu_blocks(numel), CU_THREADS, 0, cu_stream()>>>(
			numel, (const T *)n->in[0]->data, (const T *)n->in[1]->data,
			(T *)n->out->data));
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_swiglu_backward(struct ag_node *n)
{
	int64_t numel = tensor_numel(n->out);
	const struct tensor *g = n->in[0], *u = n->in[1];
	if (!numel || (!g->grad && !u->grad))
		return;
	CU_FLOAT_DISPATCH(n->out->dtype, T,
		swiglu_bwd_k<T><<<cu_blocks(numel), CU_THREADS, 0, cu_stream()>>>(
			numel, (const T *)g->data, (const T *)u->data,
			(const T *)n->out->grad->data, g->grad ? (T *)g->grad->data : nullptr,
			u->grad ? (T *)u->grad->data : nullptr));
	CUDA_LAUNCH_CHECK();
}
