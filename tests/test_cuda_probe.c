/* test_cuda_probe.c: the CUDA build's launch path, when a GPU is present;
 * reported as skipped otherwise (and when built without nvcc), or failed
 * under HUG_REQUIRE_GPU=1 (make test-gpu). */
#include "harness.h"
#include "test_cuda_util.h"

#ifdef HUG_CUDA
#include "../autograd/cuda/cuda_api.h"
#endif

TEST(cuda_axpb_roundtrip)
{
	CUDA_TEST_BEGIN();
#ifdef HUG_CUDA
	float in[1000], out[1000];
	for (int i = 0; i < 1000; i++)
		in[i] = (float)i * 0.5f - 7.0f;
	REQUIRE(hug_cuda_axpb_roundtrip(in, out, 1000, 3.0f, -1.0f) == 0);
	for (int i = 0; i < 1000; i++)
		CHECK(out[i] == 3.0f * in[i] - 1.0f);
#endif
}
