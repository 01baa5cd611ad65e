// norm.cu: layer norm and softmax over the last dim (autograd/cpu/
// norm.tmpl.h). One block per row; row statistics accumulate in double and
// are combined with the fixed-tree block_sum. LayerNorm's saved mean and
// rstd are f32 for f32 and bf16 inputs (the op layer allocates them so).
// The weight and bias gradients are column sums (colsum.cuh: row chunks,
// double sums in a fixed order), so every result is deterministic.
#include <cmath>

#include "colsum.cuh"
#include "common.cuh"

#define NORM_THREADS 256

template <typename T>
__global__ void __launch_bounds__(NORM_THREADS)
layernorm_fwd_k(int64_t c, double eps, const T *x, const T *w, const T *b, T *y,
		float *mean, float *rstd)
{
	const int64_t r = blockIdx.x;
	const T *xr = x + r * c;
	T *yr = y + r * c;
	double s = 0;
	for (int64_t i = threadIdx.x; i < c; i += blockDim.x)
		s += to_f(xr[i]);
	double m = block_sum(s) / (double)c;
	double v = 0;
	for (int64_t i = threadIdx.x; i < c; i += blockDim.x) {
		double d = (double)to_f(xr[i]) - m;
		v += d * d;
	}
	v = block_sum(v) / (double)c;
	float rs = (float)(1.0 / sqrt(v + eps));
	float mr = (float)m;
	if (threadIdx.x == 0) {
		mean[r] = mr;
		rstd[r] = rs;
	}
	for (int64_t i = threadIdx.x; i < c; i += blockDim.x)
		yr[i] = from_f<T>((to_f(xr[i]) - mr) * rs * to_f(w[i]) + (b ? to_f(b[i]) : 0.0f));
}

// dx += rstd (g - mean(g) - xhat mean(g xhat)), g = dy w
template <typename T>
__global__ void __launch_bounds__(NORM_THREADS)
layernorm_bwd_dx_k(int64_t c, const T *x, const T *w, const float *mean,
		   const float *rstd, const T *dy, T *dx)
{
	const int64_t r = blockIdx.x;
	const T *xr = x + r * c, *dyr = dy + r * c;
	T *dxr = dx + r * c;
	float m = mean[r], rs = rstd[r];
	double sg = 0, sgx = 0;
	for (int64_t i = threadIdx.x; i < c; i += blockDim.x) {
		double g = (double)to_f(dyr[i]) * to_f(w[i]);
		sg += g;
		sgx += g * (double)((to_f(xr[i]) - m) * rs);
	}
	sg = block_sum(sg);
	sgx = block_sum(sgx);
	float mg = (float)(sg / (double)c), mgx = (float)(sgx / (double)c);
	for (int64_t i = threadIdx.x; i < c; i += blockDim.x) {
		float xh = (to_f(xr[i]) - m) * rs;
		dxr[i] = from_f<T>(to_f(dxr[i]) + rs * (to_f(dyr[i]) * to_f(w[i]) - mg - xh * mgx));
	}
}

// The terms of LayerNorm's weight and bias gradients at row r, element e:
// dw += sum_rows dy xhat, db += sum_rows dy (column sums, colsum.cuh).
template <typename T> struct LnWbTerms {
	static constexpr int N = 2;
	const T *x, *dy;
	const float *mean, *rstd;
	__device__ void operator()(int64_t r, int64_t e, double *s) const
	{
		float d = to_f(dy[e]);
		s[0] += (double)d * (double)((to_f(x[e]) - mean[r]) * rstd[r]);
		s[1] += d;
	}
};

static void *grad_data(const struct tensor *t)
{
	return t && t->grad ? t->grad->data : nullptr;
}

extern "C" void cuda_layernorm_forward(struct ag_node *n)
{
	const struct tensor *x = n->in[0];
	int64_t rows = rows_of(x), c = last_dim(x);
	if (!rows)
		return;
	HUG_ASSERT(n->saved[0]->dtype == DT_F32 && n->saved[1]->dtype == DT_F32);
	CU_FLOAT_DISPATCH(x->dtype, T,
		layernorm_fwd_k<T><<<cu_rows(rows), NORM_THREADS, 0, cu_stream()>>>(
			c, n->p.layernorm.eps, (const T *)x->data, (const T *)n->in[1]->data,
			n->in[2] ? (const T *)n->in[2]->data : nullptr, (T *)n->out->data,
			(float *)n->saved[0]->data, (float *)n->saved[1]->data));
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_layernorm_backward(struct ag_node *n)
{
	const struct tensor *x = n->in[0];
	int64_t rows = rows_of(x), c = last_dim(x);
	if (!rows)
		return;
	const float *mean = (const float *)n->saved[0]->data;
	const float *rstd = (const float *)n->saved[1]->data;
	void *dw = grad_data(n->in[1]), *db = grad_data(n->in[2]);
	CU_FLOAT_DISPATCH(x->dtype, T, {
		if (x->grad)
			layernorm_bwd_dx_k<T><<<cu_rows(rows), NORM_THREADS, 0, cu_stream()>>>(
				c, (const T *)x->data, (const T *)n->in[1]->data, mean, rstd,
				(const T *)n->out->grad->data, (T *)x->grad->data);
		CUDA_LAUNCH_CHECK();
		if (dw || db)
			colsum_add(LnWbTerms<T>{ (const T *)x->data, (const T *)n->out->grad->data,
						 mean, rstd },
				   rows, c, ColsumDst<T, 2>{ { (T *)dw, (T *)db } });
	});
}

// ---- softmax ----

template <typename T>
__global__ void __launch_bounds__(NORM_THREADS)
softmax_fwd_k(int64_t c, const T *x, T *y)
{
	const int64_t r = blockIdx.x;
	const T *xr = x + r * c;
	T *yr = y + r * c;
	float mx = -INFINITY;
	for (int64_t i = threadIdx.x; i < c; i += blockDim.x) {
		float v = to_f(xr[i]);
		mx = v > mx ? v : mx;
	}
	mx = block_max(mx);
	double s = 0;
	for (int64_t i = threadIdx.x; i < c; i += blockDim.x)
		s += expf(to_f(xr[i]) - mx);
	s = block_sum(s);
	float inv = (float)(1.0 / s);
	for (int64_t i = threadIdx.x; i < c; i += blockDim.x)
		yr[i] = from_f<T>(expf(to_f(xr[i]) - mx) * inv);
}

// dx += y (dy - sum(dy y))
template <typename T>
__global__ void __launch_bounds__(NORM_THREADS)
softmax_bwd_k(int64_t c, const T *y, const T *dy, T *dx)
{
	const int64_t r = blockIdx.x;
	const T *yr = y + r * c, *dyr = dy + r * c;
	T *dxr = dx + r * c;
	double s = 0;
	for (int64_t i = threadIdx.x; i < c; i += blockDim.x)
		s += (double)to_f(dyr[i]) * to_f(yr[i]);
	float sf = (float)block_sum(s);
	for (int64_t i = threadIdx.x; i < c; i += blockDim.x)
		dxr[i] = from_f<T>(to_f(dxr[i]) + to_f(yr[i]) * (to_f(dyr[i]) - sf));
}

extern "C" void cuda_softmax_forward(struct ag_node *n)
{
	const struct tensor *x = n->in[0];
	int64_t rows = rows_of(x), c = last_dim(x);
	if (!rows || !c)
		return;
	CU_FLOAT_DISPATCH(x->dtype, T,
		softmax_fwd_k<T><<<cu_rows(rows), NORM_THREADS, 0, cu_stream()>>>(
			c, (const T *)x->data, (T *)n->out->data));
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_softmax_backward(struct ag_node *n)
{
	const struct tensor *y = n->out;
	int64_t rows = rows_of(y), c = last_dim(y);
	if (!rows || !c)
		return;
	CU_FLOAT_DISPATCH(y->dtype, T,
		softmax_bwd_k<T><<<cu_rows(rows), NORM_THREADS, 0, cu_stream()>>>(
			c, (const T *)y->data, (const T *)y->grad->data,
			(T *)n->in[0]->grad->data));
	CUDA_LAUNCH_CHECK();
}
