/* rope.c: CPU kernels for the rotary position embedding (ag_rope). */
#include "cpu_kernels.h"

#define CPU_TEMPLATE "rope.tmpl.h"
#include "instantiate.h"

void cpu_rope_forward(struct ag_node *n)
{
	const struct tensor *x = n->in[0];
	CPU_DISPATCH(x->dtype, rope_apply, x->shape, x->stride, x->data, n->in[1]->data,
		     n->in[2]->data, n->out->data, false);
}

void cpu_rope_backward(struct ag_node *n)
{
	const struct tensor *x = n->in[0], *dy = n->out->grad;
	if (!x->grad)
		return;
	CPU_DISPATCH(x->dtype, rope_apply, dy->shape, dy->stride, dy->data, n->in[1]->data,
		     n->in[2]->data, x->grad->data, true);
}
