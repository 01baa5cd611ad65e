/* node_dims.h: the sizes of matmul and reduction nodes as the kernels walk
 * them, computed on the host and shared by both backends (bcast.h does the
 * same for broadcast element-wise nodes). */
#ifndef HUG_AUTOGRAD_NODE_DIMS_H
#define HUG_AUTOGRAD_NODE_DIMS_H

#include <stdbool.h>
#include <stdint.h>

#include "node.h"

/* A matmul node (in[0] = a, in[1] = b, out = c (..., M, N)) as `batch`
 * products of (M, K) by (K, N); b_shared: b is one 2-d matrix for every
 * product (linear layers). batch 0 when c is empty. */
struct ag_mm_dims {
	int64_t batch, m, k, n;
	bool b_shared;
};

struct ag_mm_dims ag_mm_dims_of(const struct ag_node *nd);

/* A sum/mean node's input as (outer, k, inner) around its reduced dim:
 * element (o, j, i) at (o * k + j) * inner + i, reduced over j. Over all
 * dims (AG_DIM_ALL): outer = inner = 1, k = numel. */
void ag_reduce_dims(const struct ag_node *n, int64_t *outer, int64_t *k, int64_t *inner);

#endif
