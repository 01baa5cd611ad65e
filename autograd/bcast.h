/* bcast.h: the broadcast layout of a binary element-wise node (add, mul),
 * computed once on the host and shared by the backends' kernels. */
#ifndef HUG_AUTOGRAD_BCAST_H
#define HUG_AUTOGRAD_BCAST_H

#include <stdint.h>

#include "node.h"

/* The output shape padded to 4 dims with leading 1s, and the element
 * strides of the (contiguous) inputs a and b into it: 0 along a dim where
 * that input is broadcast. Plain data: kernels take it by value. */
struct ag_bcast {
	int64_t shape[4];
	int64_t sa[4], sb[4];
};

/* The layout of node n (in[0] = a, in[1] = b, out; at most 4 dims, as the
 * op layer guarantees for add and mul). */
struct ag_bcast ag_bcast_of(const struct ag_node *n);

#endif
