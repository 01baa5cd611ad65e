/* transfer.c: host/device copies through the backends' memcpy. */
#include "transfer.h"

#include <string.h>

#include "../base/panic.h"
#include "backend.h"

void ag_memcpy(void *dst, enum device ddev, const void *src, enum device sdev, size_t bytes)
{
	if (!bytes)
		return;
	if (ddev == DEV_CPU && sdev == DEV_CPU) {
		memcpy(dst, src, bytes);
		return;
	}
	if (ddev != DEV_CPU && sdev != DEV_CPU && ddev != sdev)
		hug_panic("ag_memcpy: copies between two devices (%d and %d) are not supported",
			  (int)sdev, (int)ddev);
	const struct ag_backend *b = ag_backend_get(ddev != DEV_CPU ? ddev : sdev);
	if (!b || !b->memcpy)
		hug_panic("ag_memcpy: no backend for device %d (not initialised?)",
			  (int)(ddev != DEV_CPU ? ddev : sdev));
	b->memcpy(dst, src, bytes);
}

void tensor_transfer(struct tensor *dst, const struct tensor *src)
{
	char a[96], b[96];
	if (dst->dtype != src->dtype || tensor_numel(dst) != tensor_numel(src) ||
	    !tensor_is_contiguous(dst) || !tensor_is_contiguous(src))
		hug_panic("tensor_transfer: %s <- %s: need the same dtype and size, both "
			  "contiguous", tensor_describe(dst, a, sizeof(a)),
			  tensor_describe(src, b, sizeof(b)));
	ag_memcpy(dst->data, dst->device, src->data, src->device, tensor_nbytes(src));
}

double tensor_item(const struct tensor *t)
{
	char d[96];
	if (tensor_numel(t) != 1)
		hug_panic("tensor_item: %s has %lld elements, not 1",
			  tensor_describe(t, d, sizeof(d)), (long long)tensor_numel(t));
	_Alignas(16) unsigned char raw[16]; /* read back as float/double */
	struct tensor h = *t;
	h.device = DEV_CPU;
	h.data = raw;
	h.grad = NULL;
	h.node = NULL;
	ag_memcpy(raw, DEV_CPU, t->data, t->device, dtype_size(t->dtype));
	double v;
	tensor_read_f64(&h, &v);
	return v;
}

void tensor_flat_range(struct tensor *view, const struct tensor *t, int64_t off, int64_t len)
{
	HUG_ASSERT(tensor_is_contiguous(t) && off >= 0 && len >= 0 &&
		   off + len <= tensor_numel(t));
	memset(view, 0, sizeof(*view));
	view->dtype = t->dtype;
	view->device = t->device;
	view->ndim = 1;
	for (int d = 0; d < TENSOR_MAX_DIMS; d++)
		view->shape[d] = 1;
	view->shape[0] = len;
	view->stride[0] = 1;
	view->data = (char *)t->data + (size_t)off * dtype_size(t->dtype);
	view->name = t->name;
}
