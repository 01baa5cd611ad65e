/* node_dims.c: matmul and reduction node sizes shared by the backends'
 * kernels (node_dims.h). */
#include "node_dims.h"

#include "tensor.h"

struct ag_mm_dims ag_mm_dims_of(const struct ag_node *nd)
{
	const struct tensor *a = nd->in[0], *b = nd->in[1], *c = nd->out;
	struct ag_mm_dims d;
	d.m = c->shape[c->ndim - 2];
	d.n = c->shape[c->ndim - 1];
	d.k = nd->p.matmul.trans_a ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
	d.batch = d.m > 0 && d.n > 0 ? tensor_numel(c) / (d.m * d.n) : 0;
	d.b_shared = b->ndim == 2;
	return d;
}

void ag_reduce_dims(const struct ag_node *n, int64_t *outer, int64_t *k, int64_t *inner)
{
	const struct tensor *x = n->in[0];
	int dim = n->p.reduce.dim;
	*outer = *inner = 1;
	if (dim == AG_DIM_ALL) {
		*k = tensor_numel(x);
		return;
	}
	for (int d = 0; d < dim; d++)
		*outer *= x->shape[d];
	*k = x->shape[dim];
	for (int d = dim + 1; d < x->ndim; d++)
		*inner *= x->shape[d];
}
