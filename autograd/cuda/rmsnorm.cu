// rmsnorm.cu: RMSNorm over the last dim (autograd/cpu/rmsnorm.tmpl.h).
// Rows of up to RMS_WARP_MAX_C elements (the heads of QK-norm, small
// models) take one warp each, RMS_ROWS_PER_BLOCK to a block; wider rows
// take one block of RMS_THREADS threads each. The sum of squares and the
// backward's row sums accumulate in double and combine in a fixed tree
// (warp_sum / block_sum); the saved 1/rms is f32 for f32 and bf16 x. bf16:
// the normalised value is rounded to bf16 before the weight multiplies it
// (transformers' LlamaRMSNorm). The weight gradient is a column sum
// (colsum.cuh), so every result is deterministic.
#include <cmath>

#include "colsum.cuh"
#include "common.cuh"

#define RMS_THREADS 256
#define RMS_WARP_MAX_C 1024
#define RMS_ROWS_PER_BLOCK 8 // warps of a block in the warp-per-row mode

// v rounded to T and back (the identity for f32).
template <typename T> __device__ __forceinline__ float round_to(float v)
{
	return to_f(from_f<T>(v));
}

// The sum of v over a row's threads (a warp, or the block), returned to
// every one of them.
template <bool WARP> __device__ __forceinline__ double row_sum(double v)
{
	if (WARP)
		return __shfl_sync(0xffffffffu, warp_sum(v), 0);
	return block_sum(v);
}

// The row this thread works on, its first element and the stride between
// its elements (a warp or the block per row).
template <bool WARP> __device__ __forceinline__ int64_t row_index()
{
	return WARP ? (int64_t)blockIdx.x * RMS_ROWS_PER_BLOCK + (threadIdx.x >> 5)
		    : (int64_t)blockIdx.x;
}

template <bool WARP> __device__ __forceinline__ int row_lane()
{
	return WARP ? (int)(threadIdx.x & 31) : (int)threadIdx.x;
}

template <bool WARP> __device__ __forceinline__ int row_step()
{
	return WARP ? 32 : (int)blockDim.x;
}

// y = round_T(x rstd) w, rstd = 1 / sqrt(mean(x^2) + eps); x, y (rows, c)
template <typename T, bool WARP>
__global__ void __launch_bounds__(RMS_THREADS)
rmsnorm_fwd_k(int64_t rows, int64_t c, double eps, const T *x, const T *w, T *y,
	      float *rstd)
{
	const int64_t r = row_index<WARP>();
	if (r >= rows) // a whole warp (warp mode only: rows fill the grid otherwise)
		return;
	const int lane = row_lane<WARP>(), step = row_step<WARP>();
	const T *xr = x + r * c;
	T *yr = y + r * c;
	double ss = 0;
	for (int64_t i = lane; i < c; i += step) {
		double v = to_f(xr[i]);
		ss += v * v;
	}
	ss = row_sum<WARP>(ss);
	float rs = (float)(1.0 / sqrt(ss / (double)c + eps));
	if (lane == 0)
		rstd[r] = rs;
	for (int64_t i = lane; i < c; i += step) {
		float xh = round_to<T>(to_f(xr[i]) * rs);
		yr[i] = from_f<T>(w ? xh * to_f(w[i]) : xh);
	}
}

// dx += rstd (g - xhat mean(g xhat)), g = dy w (dy without a weight)
template <typename T, bool WARP>
__global__ void __launch_bounds__(RMS_THREADS)
rmsnorm_bwd_dx_k(int64_t rows, int64_t c, const T *x, const T *w, const float *rstd,
		 const T *dy, T *dx)
{
	const int64_t r = row_index<WARP>();
	if (r >= rows)
		return;
	const int lane = row_lane<WARP>(), step = row_step<WARP>();
	const T *xr = x + r * c, *dyr = dy + r * c;
	T *dxr = dx + r * c;
	float rs = rstd[r];
	double sgx = 0;
	for (int64_t i = lane; i < c; i += step) {
		float g = w ? to_f(dyr[i]) * to_f(w[i]) : to_f(dyr[i]);
		sgx += (double)g * (double)(to_f(xr[i]) * rs);
	}
	float mgx = (float)(row_sum<WARP>(sgx) / (double)c);
	for (int64_t i = lane; i < c; i += step) {
		float g = w ? to_f(dyr[i]) * to_f(w[i]) : to_f(dyr[i]);
		dxr[i] = from_f<T>(to_f(dxr[i]) + rs * (g - (to_f(xr[i]) * rs) * mgx));
	}
}

// The term of the weight gradient at row r, element e: dy xhat, xhat as
// the forward multiplied it (rounded to T).
template <typename T> struct RmsWTerms {
	static constexpr int N = 1;
	const T *x, *dy;
	const float *rstd;
	__device__ void operator()(int64_t r, int64_t e, double *s) const
	{
		s[0] += (double)to_f(dy[e]) * (double)round_to<T>(to_f(x[e]) * rstd[r]);
	}
};

// The launch of a row kernel: warp per row for narrow rows, else block.
static bool warp_rows(int64_t c)
{
	return c <= RMS_WARP_MAX_C;
}

static unsigned row_blocks(int64_t rows, bool warp)
{
	return warp ? cu_rows((rows + RMS_ROWS_PER_BLOCK - 1) / RMS_ROWS_PER_BLOCK)
		    : cu_rows(rows);
}

extern "C" void cuda_rmsnorm_forward(struct ag_node *n)
{
	const struct tensor *x = n->in[0], *w = n->in[1];
	int64_t c = last_dim(x), rows = rows_of(x);
	if (!rows || !c)
		return;
	HUG_ASSERT(n->saved[0]->dtype == DT_F32);
	bool warp = warp_rows(c);
	unsigned threads = warp ? 32 * RMS_ROWS_PER_BLOCK : RMS_THREADS;
	CU_FLOAT_DISPATCH(x->dtype, T, {
		const T *wp = w ? (const T *)w->data : nullptr;
		if (warp)
			rmsnorm_fwd_k<T, true><<<row_blocks(rows, true), threads, 0, cu_stream()>>>(
				rows, c, n->p.rmsnorm.eps, (const T *)x->data, wp,
				(T *)n->out->data, (float *)n->saved[0]->data);
		else
			rmsnorm_fwd_k<T, false><<<row_blocks(rows, false), threads, 0, cu_stream()>>>(
				rows, c, n->p.rmsnorm.eps, (const T *)x->data, wp,
				(T *)n->out->data, (float *)n->saved[0]->data);
	});
	CUDA_LAUNCH_CHECK();
}

extern "C" void cuda_rmsnorm_backward(struct ag_node *n)
{
	const struct tensor *x = n->in[0], *w = n->in[1];
	int64_t c = last_dim(x), rows = rows_of(x);
	if (!rows || !c)
		return;
	const float *rstd = (const float *)n->saved[0]->data;
	bool warp = warp_rows(c);
	unsigned threads = warp ? 32 * RMS_ROWS_PER_BLOCK : RMS_THREADS;
	CU_FLOAT_DISPATCH(x->dtype, T, {
		const T *xp = (const T *)x->data, *dy = (const T *)n->out->grad->data;
		const T *wp = w ? (const T *)w->data : nullptr;
		if (x->grad) {
			T *dx = (T *)x->grad->data;
			if (warp)
				rmsnorm_bwd_dx_k<T, true><<<row_blocks(rows, true), threads, 0,
							   cu_stream()>>>(rows, c, xp, wp, rstd, dy, dx);
			else
				rmsnorm_bwd_dx_k<T, false><<<row_blocks(rows, false), threads, 0,
							    cu_stream()>>>(rows, c, xp, wp, rstd, dy, dx);
			CUDA_LAUNCH_CHECK();
		}
		if (w && w->grad)
			colsum_add(RmsWTerms<T>{ xp, dy, rstd }, rows, c,
				   ColsumDst<T, 1>{ { (T *)w->grad->data } });
	});
}
