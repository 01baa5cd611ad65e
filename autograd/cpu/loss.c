/* loss.c: CPU kernels for the fused cross-entropy loss. */
#include "cpu_kernels.h"

#define CPU_TEMPLATE "loss.tmpl.h"
#include "instantiate.h"

void cpu_cross_entropy_forward(struct ag_node *n)
{
	const struct tensor *x = n->in[0], *t = n->in[1];
	int64_t v = x->shape[x->ndim - 1], rows = tensor_numel(t), count;
	const struct ag_collective *coll = n->p.cross_entropy.coll;
	double loss = CPU_DISPATCH(x->dtype, xent_fwd, rows, v, x->data, t->data,
				   n->p.cross_entropy.ignore_index, n->saved[0]->data,
				   coll ? n->saved[1]->data : NULL,
				   n->p.cross_entropy.vocab_offset, coll, &count);
	n->p.cross_entropy.count = count;
	CPU_DISPATCH(x->dtype, scalar_set, n->out->data, loss);
}

void cpu_cross_entropy_backward(struct ag_node *n)
{
	const struct tensor *x = n->in[0], *t = n->in[1];
	int64_t count = n->p.cross_entropy.count;
	if (!x->grad || count == 0)
		return;
	int64_t v = x->shape[x->ndim - 1], rows = tensor_numel(t);
	double g = CPU_DISPATCH(x->dtype, scalar_get, n->out->grad->data) / (double)count;
	CPU_DISPATCH(x->dtype, xent_bwd, rows, v, x->data, t->data,
		     n->p.cross_entropy.ignore_index, n->saved[0]->data, g,
		     n->p.cross_entropy.vocab_offset, x->grad->data);
}
