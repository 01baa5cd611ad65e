// cuda_runtime.h (CUDA emulator stand-in, C++ only): the runtime API of
// cuda_runtime_api.h plus what CUDA C++ device code needs (qualifiers,
// built-in variables, barriers, warp votes and shuffles, atomics, rounding
// intrinsics) and the launch machinery that tools/cuemu/cu2cpp's rewritten
// launches call. The execution model is tools/cuemu/sched.cpp's: blocks run
// one after another; the threads of a block are coroutines switched at
// barriers (see README.md there).
#ifndef CUEMU_CUDA_RUNTIME_H
#define CUEMU_CUDA_RUNTIME_H

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_runtime_api.h"

// ---- qualifiers ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

// ---- built-in variables ----
struct uint3 {
	unsigned x, y, z;
};
struct dim3 {
	unsigned x, y, z;
	dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
extern uint3 cuemu_threadIdx, cuemu_blockIdx;
extern dim3 cuemu_blockDim, cuemu_gridDim;
#define threadIdx cuemu_threadIdx
#define blockIdx cuemu_blockIdx
#define blockDim cuemu_blockDim
#define gridDim cuemu_gridDim
constexpr int warpSize = 32;

// ---- C++ overloads of the runtime API ----
template <typename T> cudaError_t cudaMalloc(T **p, size_t bytes)
{
	return cudaMalloc((void **)p, bytes);
}
cudaError_t cuemu_func_set_attribute(const void *f, int attr, int value);
template <typename F> cudaError_t cudaFuncSetAttribute(F *f, cudaFuncAttribute attr, int value)
{
	return cuemu_func_set_attribute((const void *)f, (int)attr, value);
}

// ---- barriers and warp operations (sched.cpp) ----
void cuemu_syncthreads();
int cuemu_syncthreads_or(int pred);
void cuemu_syncwarp();
#define __syncthreads() cuemu_syncthreads()
#define __syncthreads_or(p) cuemu_syncthreads_or(p)
#define __syncwarp(...) cuemu_syncwarp()
// The exchange slots of the calling thread's warp (32 x 8 bytes) for its
// next warp operation (one wait each: see sched.cpp), its lane, and the
// check that a warp operation has a full warp and mask.
unsigned char *cuemu_warp_slots();
int cuemu_lane();
void cuemu_warp_check(const char *op, unsigned mask, int width);

template <typename T> T cuemu_shfl(const char *op, unsigned mask, T v, int src, int width)
{
	static_assert(sizeof(T) <= 8, "shuffle of more than 8 bytes");
	cuemu_warp_check(op, mask, width);
	unsigned char *slot = cuemu_warp_slots();
	int lane = cuemu_lane();
	memcpy(slot + 8 * lane, &v, sizeof(T));
	cuemu_syncwarp();
	T r = v;
	int seg = lane / width * width;
	if (src >= seg && src < seg + width)
		memcpy(&r, slot + 8 * src, sizeof(T));
	return r;
}
template <typename T> T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32)
{
	return cuemu_shfl("__shfl_down_sync", mask, v, cuemu_lane() + (int)delta, width);
}
template <typename T> T __shfl_xor_sync(unsigned mask, T v, int lanemask, int width = 32)
{
	return cuemu_shfl("__shfl_xor_sync", mask, v, cuemu_lane() ^ lanemask, width);
}
template <typename T> T __shfl_sync(unsigned mask, T v, int src, int width = 32)
{
	return cuemu_shfl("__shfl_sync", mask, v, cuemu_lane() / width * width + src % width,
			  width);
}
unsigned __ballot_sync(unsigned mask, int pred);
static inline int __popc(unsigned v) { return __builtin_popcount(v); }

// ---- arithmetic intrinsics: correctly rounded, never contracted ----
static inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
static inline float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }
static inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
static inline float __fdiv_rn(float a, float b) { volatile float r = a / b; return r; }
static inline float __fsqrt_rn(float a) { return std::sqrt(a); }
static inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }

// ---- atomics: one thread runs at a time, so a plain update is atomic ----
template <typename T> T atomicAdd(T *p, T v) { T o = *p; *p = o + v; return o; }
template <typename T> T atomicMax(T *p, T v) { T o = *p; *p = o > v ? o : v; return o; }
template <typename T> T atomicMin(T *p, T v) { T o = *p; *p = o < v ? o : v; return o; }

// ---- shared memory (cu2cpp rewrites the declarations into these) ----
void cuemu_shared_register(void *p, size_t bytes);
void *cuemu_dyn_smem();

// ---- launches ----
struct cuemu_cfg_t {
	dim3 grid, block;
	size_t smem;
	cudaStream_t stream;
};
static inline cuemu_cfg_t cuemu_cfg(dim3 g, dim3 b, size_t smem = 0, cudaStream_t st = nullptr)
{
	return cuemu_cfg_t{ g, b, smem, st };
}
void cuemu_launch_impl(const char *name, const void *kernel, const cuemu_cfg_t &cfg,
		       const std::function<void()> &body);
// Reports a pointer parameter that is neither null nor device memory (a
// host pointer handed to a kernel faults on a GPU). Pointers inside
// structures passed by value are not seen.
void cuemu_check_pointer_arg(const char *kernel, int index, const void *p);
template <typename T> void cuemu_check_arg(const char *kernel, int index, const T &v)
{
	if constexpr (std::is_pointer<T>::value)
		cuemu_check_pointer_arg(kernel, index, (const void *)v);
}

// Each thread gets its own copy of the parameters, converted to the
// kernel's parameter types at the launch, as on the device.
template <typename... P, typename... A>
void cuemu_launch(const char *name, void (*k)(P...), const cuemu_cfg_t &cfg, A &&...args)
{
	std::tuple<typename std::decay<P>::type...> tup(std::forward<A>(args)...);
	std::apply([name](const auto &...v) {
		int i = 0;
		(cuemu_check_arg(name, i++, v), ...);
	}, tup);
	auto bound = std::function<void()>([k, tup]() { std::apply(k, tup); });
	cuemu_launch_impl(name, (const void *)k, cfg, bound);
}

#endif
