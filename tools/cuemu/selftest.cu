// selftest.cu: planted bugs for tests/test_cuemu.c, one extern "C" function
// each, to prove that the emulator's checks fire (a check that cannot fail
// proves nothing). Built only into emulator builds (CUEMU=1); each function
// runs in a forked child of the test, which expects the child's stderr to
// name the bug.
#include <cstdio>
#include <cstring>

#include <cublas_v2.h>
#include <cuda_runtime.h>

// Host code reads device memory.
extern "C" float cuemu_selftest_host_reads_device(void)
{
	float *d = nullptr;
	cudaMalloc(&d, 64 * sizeof(float));
	volatile float *v = d;
	return v[3];
}

__global__ void write_one_k(float *p, int i) { p[i + (int)threadIdx.x] = 1.0f; }

// A kernel writes past the end of its buffer.
extern "C" void cuemu_selftest_kernel_overruns(void)
{
	float *d = nullptr;
	cudaMalloc(&d, 1000 * sizeof(float));
	write_one_k<<<1, 64>>>(d, 1000);
}

__global__ void divergent_barrier_k(float *p)
{
	if (threadIdx.x < 16) {
		__syncthreads();
		p[threadIdx.x] = 1.0f;
	}
}

// Only some threads of the block reach __syncthreads.
extern "C" void cuemu_selftest_divergent_barrier(void)
{
	float *d = nullptr;
	cudaMalloc(&d, 64 * sizeof(float));
	divergent_barrier_k<<<1, 64>>>(d);
}

__global__ void smem_k(float *p)
{
	extern __shared__ __align__(16) unsigned char smem[];
	float *s = (float *)smem;
	s[threadIdx.x] = 1.0f;
	p[threadIdx.x] = s[threadIdx.x];
}

// 64 KiB of dynamic shared memory without cudaFuncSetAttribute.
extern "C" int cuemu_selftest_smem_without_optin(void)
{
	float *d = nullptr;
	cudaMalloc(&d, 64 * sizeof(float));
	smem_k<<<1, 64, 64 * 1024>>>(d);
	return (int)cudaGetLastError();
}

// cublasGemmEx with a leading dimension below the rows of A.
extern "C" int cuemu_selftest_gemm_bad_lda(void)
{
	float *a = nullptr, *b = nullptr, *c = nullptr;
	cudaMalloc(&a, 64 * sizeof(float));
	cudaMalloc(&b, 64 * sizeof(float));
	cudaMalloc(&c, 64 * sizeof(float));
	cublasHandle_t h;
	cublasCreate(&h);
	float one = 1.0f, zero = 0.0f;
	return (int)cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, a, CUDA_R_32F, 4, b,
				 CUDA_R_32F, 8, &zero, c, CUDA_R_32F, 8, CUBLAS_COMPUTE_32F,
				 CUBLAS_GEMM_DEFAULT);
}

// A host-to-device copy whose source is device memory.
extern "C" int cuemu_selftest_copy_wrong_direction(void)
{
	float *a = nullptr, *b = nullptr;
	cudaMalloc(&a, 64 * sizeof(float));
	cudaMalloc(&b, 64 * sizeof(float));
	return (int)cudaMemcpy(a, b, 64 * sizeof(float), cudaMemcpyHostToDevice);
}

__global__ void shuffle_k(float *p)
{
	float v = __shfl_down_sync(0xffffffffu, (float)threadIdx.x, 1);
	p[threadIdx.x] = v;
}

// A warp shuffle in a block of 48 threads: the second warp is partial.
extern "C" void cuemu_selftest_partial_warp_shuffle(void)
{
	float *d = nullptr;
	cudaMalloc(&d, 64 * sizeof(float));
	shuffle_k<<<1, 48>>>(d);
}

__global__ void neighbour_k(float *out)
{
	__shared__ float s[64];
	s[threadIdx.x] = (float)threadIdx.x;
	// missing __syncthreads(): the neighbour may not have written yet
	out[threadIdx.x] = s[(threadIdx.x + 1) % 64];
}

// A missing barrier: out (64 floats, host) gets what each thread read of
// its neighbour's slot. In thread order, thread t reads slot t + 1 before
// thread t + 1 writes it (NaN); in reverse order, after.
extern "C" void cuemu_selftest_missing_barrier(float *out)
{
	float *d = nullptr;
	cudaMalloc(&d, 64 * sizeof(float));
	neighbour_k<<<1, 64>>>(d);
	cudaMemcpy(out, d, 64 * sizeof(float), cudaMemcpyDeviceToHost);
	cudaFree(d);
}

// Fresh device memory read back without a write: NaN in every float.
extern "C" float cuemu_selftest_fresh_memory(void)
{
	float *d = nullptr, h = 0.0f;
	cudaMalloc(&d, 64 * sizeof(float));
	cudaMemcpy(&h, d + 5, sizeof(float), cudaMemcpyDeviceToHost);
	cudaFree(d);
	return h;
}

// A host pointer handed to a kernel.
extern "C" void cuemu_selftest_host_pointer_to_kernel(void)
{
	static float host[64];
	write_one_k<<<1, 32>>>(host, 0);
}
