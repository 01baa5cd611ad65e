// device_probe.cu: device discovery and a launch smoke test for the CUDA
// build (the backend proper is runtime.cu and the kernel files).
#include <cstdio>
#include <cuda_runtime.h>

#include "cuda_api.h"
#include "cuda_check.h"

extern "C" int hug_cuda_device_count(void)
{
	int n = 0;
	if (cudaGetDeviceCount(&n) != cudaSuccess) {
		cudaGetLastError(); // clear the sticky "no device" error
		return 0;
	}
	return n;
}

extern "C" int hug_cuda_device_name(int dev, char *buf, int len)
{
	cudaDeviceProp prop;
	if (len <= 0 || cudaGetDeviceProperties(&prop, dev) != cudaSuccess)
		return -1;
	snprintf(buf, (size_t)len, "%s", prop.name);
	return 0;
}

__global__ void axpb_kernel(const float *in, float *out, int n, float a, float b)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		out[i] = a * in[i] + b;
}

extern "C" int hug_cuda_axpb_roundtrip(const float *in, float *out, int n,
				       float a, float b)
{
	float *d_in = nullptr, *d_out = nullptr;
	size_t bytes = (size_t)n * sizeof(float);
	int rc = -1;
	CUDA_TRY(cudaMalloc(&d_in, bytes));
	CUDA_TRY(cudaMalloc(&d_out, bytes));
	CUDA_TRY(cudaMemcpy(d_in, in, bytes, cudaMemcpyHostToDevice));
	axpb_kernel<<<(n + 255) / 256, 256>>>(d_in, d_out, n, a, b);
	CUDA_TRY(cudaGetLastError());
	CUDA_TRY(cudaMemcpy(out, d_out, bytes, cudaMemcpyDeviceToHost));
	rc = 0;
fail:
	cudaFree(d_in);
	cudaFree(d_out);
	return rc;
}
