/* backend.c: the op name table (from ops.def) and the per-device backend registry. */
#include "backend.h"

#include "../base/panic.h"

const struct ag_op_info ag_op_info[AG_OP_COUNT] = {
#define AG_OP(U, l, kind) [AG_OP_##U] = { #l, AG_OP_IS_VIEW_##kind },
#include "ops.def"
};

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
