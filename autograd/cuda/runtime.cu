// runtime.cu: the CUDA backend's process-wide state (device, stream,
// cuBLAS handle and workspace, reduction scratch), the device arena
// allocator, and copies between host and device.
#include <cmath>

#include "common.cuh"

extern "C" {
#include "../arena.h"
}

// cuBLAS gets its workspace from us, so it never allocates behind the
// arenas' back (and, with one stream, its results are deterministic).
#define CUBLAS_WORKSPACE_BYTES ((size_t)32 << 20)

static struct {
	bool ready;
	int device;
	cudaStream_t stream;
	cublasHandle_t blas;
	void *blas_ws;
	double *scratch;
	void *work;        // cu_workspace
	size_t work_bytes;
	size_t smem_max;
	uint64_t n_allocs;
} rt = { false, -1, nullptr, nullptr, nullptr, nullptr, nullptr, 0, 0, 0 };

cudaStream_t cu_stream()
{
	HUG_ASSERT(rt.ready);
	return rt.stream;
}

cublasHandle_t cu_blas()
{
	HUG_ASSERT(rt.ready);
	return rt.blas;
}

double *cu_scratch()
{
	HUG_ASSERT(rt.ready);
	return rt.scratch;
}

void *cu_workspace(size_t bytes)
{
	HUG_ASSERT(rt.ready);
	if (bytes <= rt.work_bytes)
		return rt.work;
	// kernels issued earlier may still read the old block: cudaFree waits
	// for the device before it releases memory
	if (rt.work)
		CUDA_CHECK(cudaFree(rt.work));
	rt.work = nullptr;
	rt.work_bytes = 0;
	cudaError_t e = cudaMalloc(&rt.work, bytes);
	if (e != cudaSuccess)
		hug_panic("cudaMalloc of a %zu-byte kernel workspace failed: %s (a smaller "
			  "batch or sequence fits in less device memory)",
			  bytes, cudaGetErrorString(e));
	rt.n_allocs++;
	rt.work_bytes = bytes;
	return rt.work;
}

size_t cu_smem_max()
{
	return rt.smem_max;
}

extern "C" void cuda_runtime_init(int device)
{
	if (rt.ready) {
		HUG_ASSERT(rt.device == device);
		return;
	}
	CUDA_CHECK(cudaSetDevice(device));
	// a blocking stream: ordered with the legacy default stream (NCCL)
	CUDA_CHECK(cudaStreamCreate(&rt.stream));
	CUBLAS_CHECK(cublasCreate(&rt.blas));
	CUBLAS_CHECK(cublasSetStream(rt.blas, rt.stream));
	// f32 GEMMs in true f32 (no TF32), so they match the CPU reference
	CUBLAS_CHECK(cublasSetMathMode(rt.blas, CUBLAS_DEFAULT_MATH));
	CUBLAS_CHECK(cublasSetAtomicsMode(rt.blas, CUBLAS_ATOMICS_NOT_ALLOWED));
	CUDA_CHECK(cudaMalloc(&rt.blas_ws, CUBLAS_WORKSPACE_BYTES));
	CUBLAS_CHECK(cublasSetWorkspace(rt.blas, rt.blas_ws, CUBLAS_WORKSPACE_BYTES));
	CUDA_CHECK(cudaMalloc(&rt.scratch, CU_SCRATCH_DOUBLES * sizeof(double)));
	int optin = 0;
	CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin,
					  device));
	rt.smem_max = (size_t)optin;
	rt.device = device;
	rt.ready = true;
}

extern "C" bool hug_cuda_ready(void)
{
	return rt.ready;
}

extern "C" int hug_cuda_current_device(void)
{
	return rt.ready ? rt.device : -1;
}

// ---- the device arena allocator ----

static void *dev_alloc(size_t size)
{
	HUG_ASSERT(rt.ready);
	void *p = nullptr;
	cudaError_t e = cudaMalloc(&p, size);
	if (e != cudaSuccess)
		hug_panic("cudaMalloc of %zu bytes failed: %s (a smaller batch, "
			  "sequence or model fits in less device memory)",
			  size, cudaGetErrorString(e));
	rt.n_allocs++;
	return p;
}

static void dev_free(void *p)
{
	CUDA_CHECK(cudaFree(p));
}

static void dev_zero(void *p, size_t size)
{
	if (size)
		CUDA_CHECK(cudaMemsetAsync(p, 0, size, cu_stream()));
}

static const struct arena_allocator device_allocator = {
	DEV_CUDA, dev_alloc, dev_free, dev_zero,
};

extern "C" const struct arena_allocator *hug_cuda_allocator(void)
{
	HUG_ASSERT(rt.ready);
	return &device_allocator;
}

extern "C" uint64_t hug_cuda_alloc_count(void)
{
	return rt.n_allocs;
}

// ---- copies ----

static void check_pair(const struct tensor *dst, const struct tensor *src,
		       enum device dst_dev, enum device src_dev)
{
	HUG_ASSERT(dst->device == dst_dev && src->device == src_dev);
	HUG_ASSERT(dst->dtype == src->dtype && tensor_same_shape(dst, src));
	HUG_ASSERT(tensor_is_contiguous(dst) && tensor_is_contiguous(src));
}

extern "C" void hug_cuda_memcpy_h2d(void *dst, const void *src, size_t bytes)
{
	if (!bytes)
		return;
	CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cu_stream()));
	// pageable sources are staged before the call returns, but wait so
	// the caller may reuse any kind of source memory at once
	CUDA_CHECK(cudaStreamSynchronize(cu_stream()));
}

extern "C" void hug_cuda_memcpy_d2h(void *dst, const void *src, size_t bytes)
{
	if (!bytes)
		return;
	CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cu_stream()));
	CUDA_CHECK(cudaStreamSynchronize(cu_stream()));
}

extern "C" void hug_cuda_memcpy(void *dst, const void *src, size_t bytes)
{
	if (!bytes)
		return;
	CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, cu_stream()));
	CUDA_CHECK(cudaStreamSynchronize(cu_stream()));
}

extern "C" void hug_cuda_copy_h2d(struct tensor *dst, const struct tensor *src)
{
	check_pair(dst, src, DEV_CUDA, DEV_CPU);
	hug_cuda_memcpy_h2d(dst->data, src->data, tensor_nbytes(src));
}

extern "C" void hug_cuda_copy_d2h(struct tensor *dst, const struct tensor *src)
{
	check_pair(dst, src, DEV_CPU, DEV_CUDA);
	hug_cuda_memcpy_d2h(dst->data, src->data, tensor_nbytes(src));
}

extern "C" void hug_cuda_zero(void *p, size_t bytes)
{
	dev_zero(p, bytes);
}

extern "C" void hug_cuda_synchronize(void)
{
	CUDA_CHECK(cudaStreamSynchronize(cu_stream()));
}

extern "C" void *hug_cuda_stream(void)
{
	return (void *)cu_stream();
}
