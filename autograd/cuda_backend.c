/* cuda_backend.c: the CUDA backend's kernel table and its registration
 * (hug_cuda_init). The kernels are extern "C" functions in autograd/cuda/
 * (CUDA C++); this table is C so it can use designated initialisers, as the
 * CPU backend's does. Compiled to nothing without HUG_CUDA. */
#ifdef HUG_CUDA

#include "backend.h"
#include "cuda/cuda_api.h"
#include "cuda/cuda_kernels.h"
#include "../base/error.h"

#define KERNELS(op, fwd, bwd) [op] = { .forward = fwd, .backward = bwd }

const struct ag_backend ag_cuda_backend = {
	.name = "cuda",
	.device = DEV_CUDA,
	.op = {
		KERNELS(AG_OP_MATMUL, cuda_matmul_forward, cuda_matmul_backward),
		KERNELS(AG_OP_LINEAR, cuda_linear_forward, cuda_linear_backward),
		KERNELS(AG_OP_ADD, cuda_add_forward, cuda_add_backward),
		KERNELS(AG_OP_MUL, cuda_mul_forward, cuda_mul_backward),
		KERNELS(AG_OP_SCALE, cuda_scale_forward, cuda_scale_backward),
		KERNELS(AG_OP_SUM, cuda_sum_forward, cuda_sum_backward),
		KERNELS(AG_OP_MEAN, cuda_mean_forward, cuda_mean_backward),
		KERNELS(AG_OP_VIEW, NULL, cuda_view_backward),
		KERNELS(AG_OP_PERMUTE, NULL, cuda_permute_backward),
		KERNELS(AG_OP_SLICE, NULL, cuda_slice_backward),
		KERNELS(AG_OP_CONTIGUOUS, cuda_contiguous_forward, cuda_contiguous_backward),
		KERNELS(AG_OP_CAST, cuda_cast_forward, cuda_cast_backward),
		KERNELS(AG_OP_EMBEDDING, cuda_embedding_forward, cuda_embedding_backward),
		KERNELS(AG_OP_LAYERNORM, cuda_layernorm_forward, cuda_layernorm_backward),
		KERNELS(AG_OP_GELU, cuda_gelu_forward, cuda_gelu_backward),
		KERNELS(AG_OP_DROPOUT, cuda_dropout_forward, cuda_dropout_backward),
		KERNELS(AG_OP_SOFTMAX, cuda_softmax_forward, cuda_softmax_backward),
		KERNELS(AG_OP_ATTENTION, cuda_attention_forward, cuda_attention_backward),
		KERNELS(AG_OP_CROSS_ENTROPY, cuda_cross_entropy_forward,
			cuda_cross_entropy_backward),
		/* communication ops: the same kernels on every backend */
		KERNELS(AG_OP_TP_COPY, NULL, ag_tp_copy_backward),
		KERNELS(AG_OP_TP_REDUCE, ag_tp_reduce_forward, ag_tp_reduce_backward),
	},
	.accumulate = cuda_accumulate,
	.fill = cuda_fill,
	.copy = cuda_copy,
	.memcpy = hug_cuda_memcpy,
	.scale = hug_cuda_scale,
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
