/* cuda_backend.c: the CUDA backend's kernel table and its registration
 * (hug_cuda_init). The kernels are extern "C" functions in autograd/cuda/
 * (CUDA C++); this table is C so it can use designated initialisers, as the
 * CPU backend's does. Compiled to nothing without HUG_CUDA. */
#ifdef HUG_CUDA

#include "backend.h"
#include "cuda/cuda_api.h"
#include "cuda/cuda_kernels.h"
#include "../base/error.h"

const struct ag_backend ag_cuda_backend = {
	.name = "cuda",
	.device = DEV_CUDA,
	.op = {
#define AG_OP(U, l, kind) AG_OP_SLOT(cuda, U, l, kind)
/* communication ops: the same kernels on every backend */
#define AG_OP_SHARED(U, l, kind) AG_OP_SLOT(ag, U, l, kind)
#include "ops.def"
	},
	.accumulate = cuda_accumulate,
	.fill = cuda_fill,
	.copy = cuda_copy,
	.memcpy = hug_cuda_memcpy,
	.scale = hug_cuda_scale,
	.optim_update = cuda_optim_update,
	.sum_squares = hug_cuda_sum_squares,
	.allocator = hug_cuda_allocator,
	.synchronize = hug_cuda_synchronize,
	.find_out_of_range = cuda_find_out_of_range,
};

int hug_cuda_init(int device, struct hug_error *err)
{
	int n = hug_cuda_device_count();
	if (hug_cuda_ready()) {
		if (hug_cuda_current_device() == device)
			return 0;
		return hug_error_set(err, "cuda: already initialised on device %d, asked "
				     "for device %d (one device per process)",
				     hug_cuda_current_device(), device);
	}
	if (n == 0)
		return hug_error_set(err, "cuda: no CUDA device found (no GPU, or no "
				     "driver; nvidia-smi shows what the system sees)");
	if (device < 0 || device >= n)
		return hug_error_set(err, "cuda: device %d out of range: %d device%s "
				     "(0..%d)", device, n, n == 1 ? "" : "s", n - 1);
	cuda_runtime_init(device);
	ag_backend_register(&ag_cuda_backend);
	return 0;
}

#else
typedef int hug_cuda_backend_disabled; /* ISO C wants a declaration */
#endif
