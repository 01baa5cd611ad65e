/* backend.c: the op name table and the per-device backend registry. */
#include "backend.h"

#include "../base/panic.h"

const struct ag_op_info ag_op_info[AG_OP_COUNT] = {
	[AG_OP_MATMUL] = { "matmul", false },
	[AG_OP_LINEAR] = { "linear", false },
	[AG_OP_ADD] = { "add", false },
	[AG_OP_MUL] = { "mul", false },
	[AG_OP_SCALE] = { "scale", false },
	[AG_OP_SUM] = { "sum", false },
	[AG_OP_MEAN] = { "mean", false },
	[AG_OP_VIEW] = { "view", true },
	[AG_OP_PERMUTE] = { "permute", true },
	[AG_OP_SLICE] = { "slice", true },
	[AG_OP_CONTIGUOUS] = { "contiguous", false },
	[AG_OP_CAST] = { "cast", false },
	[AG_OP_EMBEDDING] = { "embedding", false },
	[AG_OP_LAYERNORM] = { "layernorm", false },
	[AG_OP_GELU] = { "gelu", false },
	[AG_OP_DROPOUT] = { "dropout", false },
	[AG_OP_SOFTMAX] = { "softmax", false },
	[AG_OP_ATTENTION] = { "attention", false },
	[AG_OP_CROSS_ENTROPY] = { "cross_entropy", false },
	[AG_OP_TP_COPY] = { "tp_copy", true },
	[AG_OP_TP_REDUCE] = { "tp_reduce", false },
};
_Static_assert(sizeof(ag_op_info) / sizeof(ag_op_info[0]) == AG_OP_COUNT,
	       "op table out of step with enum ag_op");

static const struct ag_backend *backends[DEV_COUNT] = {
	[DEV_CPU] = &ag_cpu_backend,
};

void ag_backend_register(const struct ag_backend *b)
{
	backends[b->device] = b;
}

const struct ag_backend *ag_backend_get(enum device dev)
{
	return (unsigned)dev < DEV_COUNT ? backends[dev] : NULL;
}

const struct arena_allocator *ag_device_allocator(enum device dev)
{
	if (dev == DEV_CPU)
		return NULL;
	const struct ag_backend *b = ag_backend_get(dev);
	if (!b || !b->allocator)
		hug_panic("no backend for device %d (not initialised?)", (int)dev);
	return b->allocator();
}
