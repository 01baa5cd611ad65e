/* tp_kernels.c: kernels of the tensor-parallel ops f (tp_copy) and g
 * (tp_reduce). They only move data and call the group's collective, so one
 * implementation serves every backend (each lists them in its table). */
#include "backend.h"

/* f backward: the gradients of the ranks' partial results are summed. */
void ag_tp_copy_backward(struct ag_node *n)
{
	struct tensor *g = n->out->grad;
	const struct ag_collective *c = n->p.tp.coll;
	c->allreduce(c->state, g->data, tensor_numel(g), g->dtype, false, g->device);
	ag_backend_get(g->device)->accumulate(n->in[0]->grad, g);
}

/* g forward: out = x summed over the group. */
void ag_tp_reduce_forward(struct ag_node *n)
{
	struct tensor *o = n->out;
	const struct ag_collective *c = n->p.tp.coll;
	ag_backend_get(o->device)->copy(o, n->in[0]);
	c->allreduce(c->state, o->data, tensor_numel(o), o->dtype, false, o->device);
}

/* g backward: identity. */
void ag_tp_reduce_backward(struct ag_node *n)
{
	ag_backend_get(n->out->device)->accumulate(n->in[0]->grad, n->out->grad);
}
