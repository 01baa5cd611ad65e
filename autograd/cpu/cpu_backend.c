/* cpu_backend.c: the CPU backend's kernel table, the reference every other
 * backend is tested against. */
#include "cpu_kernels.h"

const struct ag_backend ag_cpu_backend = {
	.name = "cpu",
	.device = DEV_CPU,
	.op = {
#define AG_OP(U, l, kind) AG_OP_SLOT(cpu, U, l, kind)
#define AG_OP_SHARED(U, l, kind) AG_OP_SLOT(ag, U, l, kind)
#include "../ops.def"
	},
	.accumulate = cpu_accumulate,
	.fill = cpu_fill,
	.copy = cpu_copy,
	.memcpy = cpu_memcpy,
	.scale = cpu_scale,
	.scratch_numel = cpu_scratch_numel,
	.optim_update = cpu_optim_update,
	.sum_squares = cpu_sum_squares,
	.find_out_of_range = cpu_find_out_of_range,
};
