/* transfer.h: moving bytes and tensors between the host and a device, the
 * one way the rest of hug does it (the trainer's batches, checkpoints of a
 * model on the GPU, the data-parallel gradient buffers, the loss value).
 * Every function here returns when the data is in place, so the source may
 * be reused and the host may read the destination at once. Copies between
 * two host buffers are plain memcpy; any copy touching a device goes
 * through that device's backend (ag_backend.memcpy). */
#ifndef HUG_AUTOGRAD_TRANSFER_H
#define HUG_AUTOGRAD_TRANSFER_H

#include <stddef.h>

#include "tensor.h"

/* Copies `bytes` bytes from src (memory of device sdev) to dst (memory of
 * device ddev). Two different non-host devices are not supported (a
 * panic); the device's backend must be registered (a panic otherwise). */
void ag_memcpy(void *dst, enum device ddev, const void *src, enum device sdev, size_t bytes);

/* dst = src, possibly across devices: same dtype and number of elements,
 * both contiguous (a panic otherwise: callers own these invariants). */
void tensor_transfer(struct tensor *dst, const struct tensor *src);

/* The value of a one-element float or integer tensor on any device (a
 * panic for more elements), as a double: torch's .item(). */
double tensor_item(const struct tensor *t);

/* Elements [off, off + len) of contiguous tensor t as a 1-D view in
 * *view (a header only; no memory is allocated or copied). */
void tensor_flat_range(struct tensor *view, const struct tensor *t, int64_t off, int64_t len);

#endif
