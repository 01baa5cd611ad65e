/* test_cuda_probe.c: the CUDA build's launch path, when a GPU is present;
 * reported as skipped otherwise (and when built without nvcc). */
#include "harness.h"

#ifdef HUG_CUDA
#include "../autograd/cuda/cuda_api.h"
#endif

TEST(cuda_axpb_roundtrip)
{
#ifndef HUG_CUDA
	SKIP("built without CUDA");
#else
	if (hug_cuda_device_count() == 0)
		SKIP("no CUDA device");
	float in[1000], out[1000];
	for (int i = 0; i < 1000; i++)
		in[i] = (float)i * 0.5f - 7.0f;
	REQUIRE(hug_cuda_axpb_roundtrip(in, out, 1000, 3.0f, -1.0f) == 0);
	for (int i = 0; i < 1000; i++)
		CHECK(out[i] == 3.0f * in[i] - 1.0f);
#endif
}
