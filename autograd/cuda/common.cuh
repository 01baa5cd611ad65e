// common.cuh: shared pieces of the CUDA kernel files (CUDA C++ only):
// the engine's C headers with C linkage, the runtime's internals, element
// types with the CPU's rounding, dtype dispatch, launch helpers and
// deterministic block reductions.
//
// Determinism. No kernel uses floating-point atomics. Every reduction has a
// fixed shape: a thread sums a fixed set of elements in a fixed order, and
// block_sum/block_max combine the threads in a fixed tree, so a kernel gives
// the same bits on every run with the same launch configuration (launch
// configurations depend only on tensor shapes).
#ifndef HUG_AUTOGRAD_CUDA_COMMON_CUH
#define HUG_AUTOGRAD_CUDA_COMMON_CUH

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "cuda_check.h"

extern "C" {
#include "../backend.h"
#include "../node.h"
#include "../tensor.h"
}
#include "../rng.h"
#include "cuda_api.h"
#include "cuda_kernels.h"

// ---- runtime internals (runtime.cu) ----

cudaStream_t cu_stream();
cublasHandle_t cu_blas();
// Device scratch of CU_SCRATCH_DOUBLES doubles for reductions that need a
// second pass (used by one call at a time: everything is on one stream).
#define CU_SCRATCH_DOUBLES 4096
double *cu_scratch();
// A device block of at least `bytes` for a kernel's temporaries, shared by
// every kernel (one stream: one user at a time). It grows when a larger
// block is asked for (a cudaFree, which waits for the device, and a
// cudaMalloc), so after the first step of a shape it allocates nothing. The
// contents are undefined on return; valid until the next call.
void *cu_workspace(size_t bytes);
// Row-major C (m, n) = alpha op(A) op(B) + beta C on cuBLAS for `count`
// matrices, the i-th at element offsets i*sa, i*sb, i*sc (a stride 0
// shares the operand); all three of dtype dt (f32 or bf16), f32
// accumulation (no TF32). Leading dimensions in elements; op(X) = X^T when
// tx. An empty product (k == 0) adds nothing, so it needs beta == 1
// (callers fill C otherwise). Asynchronous (matmul.cu).
void cu_gemm(enum dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
	     const void *a, int64_t lda, int64_t sa, const void *b, int64_t ldb, int64_t sb,
	     float beta, void *c, int64_t ldc, int64_t sc, int64_t count);
// Most dynamic shared memory one block may use (after opting in).
size_t cu_smem_max();

// Element `off` of a buffer of dtype dt (pointer arithmetic in elements).
static inline const void *cu_elem(const void *p, enum dtype dt, int64_t off)
{
	return (const char *)p + off * (int64_t)dtype_size(dt);
}

static inline void *cu_elem(void *p, enum dtype dt, int64_t off)
{
	return (char *)p + off * (int64_t)dtype_size(dt);
}

// ---- element types ----

// bf16 and f16 as their bits; arithmetic is always done in f32.
struct bf16_t {
	uint16_t bits;
};
struct f16_t {
	uint16_t bits;
};

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(bf16_t v) { return bf16_to_f32(v.bits); }

template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16_t from_f<bf16_t>(float v)
{
	bf16_t r;
	r.bits = f32_to_bf16(v);
	return r;
}

// Element i of a buffer of any dtype as a double (integers too), and the
// store of a double rounded as the CPU's store does (via f32 for bf16/f16).
__device__ __forceinline__ double ld_any(int dt, const void *p, int64_t i)
{
	switch (dt) {
	case DT_F32: return ((const float *)p)[i];
	case DT_F64: return ((const double *)p)[i];
	case DT_BF16: return bf16_to_f32(((const uint16_t *)p)[i]);
	case DT_F16: return f16_to_f32(((const uint16_t *)p)[i]);
	case DT_I32: return ((const int32_t *)p)[i];
	default: return ((const uint8_t *)p)[i];
	}
}

__device__ __forceinline__ void st_any(int dt, void *p, int64_t i, double v)
{
	switch (dt) {
	case DT_F32: ((float *)p)[i] = (float)v; break;
	case DT_F64: ((double *)p)[i] = v; break;
	case DT_BF16: ((uint16_t *)p)[i] = f32_to_bf16((float)v); break;
	case DT_F16: ((uint16_t *)p)[i] = f32_to_f16((float)v); break;
	case DT_I32: ((int32_t *)p)[i] = (int32_t)v; break;
	default: ((uint8_t *)p)[i] = (uint8_t)v; break;
	}
}

// Runs the statement(s) with T the element type of math dtype dt (f32 or
// bf16); other dtypes were refused by the op layer, so they are a bug here.
#define CU_FLOAT_DISPATCH(dt, T, ...)                                          \
	do {                                                                   \
		switch (dt) {                                                  \
		case DT_F32: {                                                 \
			typedef float T;                                       \
			__VA_ARGS__;                                           \
			break;                                                 \
		}                                                              \
		case DT_BF16: {                                                \
			typedef bf16_t T;                                      \
			__VA_ARGS__;                                           \
			break;                                                 \
		}                                                              \
		default:                                                       \
			hug_panic("cuda: %s tensors reached a kernel that "    \
				  "takes f32 or bf16", dtype_name(dt));        \
		}                                                              \
	} while (0)

// ---- launches ----

#define CU_THREADS 256

// Blocks for a grid-stride loop over n elements (capped; at least 1).
static inline unsigned cu_blocks(int64_t n, int threads = CU_THREADS)
{
	int64_t g = (n + threads - 1) / threads;
	if (g > (1 << 20))
		g = 1 << 20;
	return (unsigned)(g < 1 ? 1 : g);
}

// One block per row: rows must fit the grid's x dimension.
static inline unsigned cu_rows(int64_t rows)
{
	HUG_ASSERT(rows >= 1 && rows <= 0x7fffffffLL);
	return (unsigned)rows;
}

#define CU_FOR(i, n)                                                           \
	for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;       \
	     i < (n); i += (int64_t)gridDim.x * blockDim.x)

// ---- deterministic block reductions (blockDim.x a multiple of 32) ----

template <typename A> __device__ __forceinline__ A warp_sum(A v)
{
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_down_sync(0xffffffffu, v, o);
	return v;
}

__device__ __forceinline__ float warp_max(float v)
{
	for (int o = 16; o > 0; o >>= 1) {
		float w = __shfl_down_sync(0xffffffffu, v, o);
		v = w > v ? w : v;
	}
	return v;
}

// The sum of v over the block, returned to every thread. Contains
// __syncthreads: every thread of the block must call it.
template <typename A> __device__ A block_sum(A v)
{
	__shared__ A sh[32];
	int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
	int nw = (blockDim.x + 31) >> 5;
	v = warp_sum(v);
	if (lane == 0)
		sh[w] = v;
	__syncthreads();
	if (w == 0) {
		v = lane < nw ? sh[lane] : (A)0;
		v = warp_sum(v);
		if (lane == 0)
			sh[0] = v;
	}
	__syncthreads();
	A r = sh[0];
	__syncthreads();
	return r;
}

// The maximum of v over the block (NaN is ignored, as the CPU's `x > mx`
// comparisons ignore it), returned to every thread.
__device__ __forceinline__ float block_max(float v)
{
	__shared__ float sh[32];
	int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
	int nw = (blockDim.x + 31) >> 5;
	v = warp_max(v);
	if (lane == 0)
		sh[w] = v;
	__syncthreads();
	if (w == 0) {
		v = lane < nw ? sh[lane] : -INFINITY;
		v = warp_max(v);
		if (lane == 0)
			sh[0] = v;
	}
	__syncthreads();
	float r = sh[0];
	__syncthreads();
	return r;
}

// ---- shapes ----

// (ndim, shape, stride) padded to 4 dims with leading size-1 dims, passed
// to kernels by value.
struct Shape4 {
	int64_t n[4];
	int64_t st[4];
};

static inline Shape4 shape4(int ndim, const int64_t *shape, const int64_t *stride)
{
	Shape4 s;
	for (int d = 0; d < 4; d++) {
		int src = d - (4 - ndim);
		s.n[d] = src >= 0 ? shape[src] : 1;
		s.st[d] = src >= 0 ? stride[src] : 0;
	}
	return s;
}

// Offset (in elements) of the e-th element in row-major order of s.n.
__device__ __forceinline__ int64_t offset4(const Shape4 &s, int64_t e)
{
	int64_t i3 = e % s.n[3];
	e /= s.n[3];
	int64_t i2 = e % s.n[2];
	e /= s.n[2];
	int64_t i1 = e % s.n[1];
	int64_t i0 = e / s.n[1];
	return i0 * s.st[0] + i1 * s.st[1] + i2 * s.st[2] + i3 * s.st[3];
}

static inline int64_t last_dim(const struct tensor *t)
{
	return t->ndim ? t->shape[t->ndim - 1] : 1;
}

static inline int64_t rows_of(const struct tensor *t)
{
	int64_t c = last_dim(t);
	return c ? tensor_numel(t) / c : 0;
}

#endif
