/* cpu_backend.c: the CPU backend's kernel table, the reference every other
 * backend is tested against. */
#include "cpu_kernels.h"

#define KERNELS(op, fwd, bwd) [op] = { .forward = fwd, .backward = bwd }

const struct ag_backend ag_cpu_backend = {
	.name = "cpu",
	.device = DEV_CPU,
	.op = {
		KERNELS(AG_OP_MATMUL, cpu_matmul_forward, cpu_matmul_backward),
		KERNELS(AG_OP_LINEAR, cpu_linear_forward, cpu_linear_backward),
		KERNELS(AG_OP_ADD, cpu_add_forward, cpu_add_backward),
		KERNELS(AG_OP_MUL, cpu_mul_forward, cpu_mul_backward),
		KERNELS(AG_OP_SCALE, cpu_scale_forward, cpu_scale_backward),
		KERNELS(AG_OP_SUM, cpu_sum_forward, cpu_sum_backward),
		KERNELS(AG_OP_MEAN, cpu_mean_forward, cpu_mean_backward),
		KERNELS(AG_OP_VIEW, NULL, cpu_view_backward),
		KERNELS(AG_OP_PERMUTE, NULL, cpu_permute_backward),
		KERNELS(AG_OP_SLICE, NULL, cpu_slice_backward),
		KERNELS(AG_OP_CONTIGUOUS, cpu_contiguous_forward, cpu_contiguous_backward),
		KERNELS(AG_OP_CAST, cpu_cast_forward, cpu_cast_backward),
		KERNELS(AG_OP_EMBEDDING, cpu_embedding_forward, cpu_embedding_backward),
		KERNELS(AG_OP_LAYERNORM, cpu_layernorm_forward, cpu_layernorm_backward),
		KERNELS(AG_OP_GELU, cpu_gelu_forward, cpu_gelu_backward),
		KERNELS(AG_OP_DROPOUT, cpu_dropout_forward, cpu_dropout_backward),
		KERNELS(AG_OP_SOFTMAX, cpu_softmax_forward, cpu_softmax_backward),
		KERNELS(AG_OP_ATTENTION, cpu_attention_forward, cpu_attention_backward),
		KERNELS(AG_OP_CROSS_ENTROPY, cpu_cross_entropy_forward,
			cpu_cross_entropy_backward),
		KERNELS(AG_OP_TP_COPY, NULL, ag_tp_copy_backward),
		KERNELS(AG_OP_TP_REDUCE, ag_tp_reduce_forward, ag_tp_reduce_backward),
	},
	.accumulate = cpu_accumulate,
	.fill = cpu_fill,
	.copy = cpu_copy,
	.memcpy = cpu_memcpy,
	.scale = cpu_scale,
	.find_out_of_range = cpu_find_out_of_range,
};
