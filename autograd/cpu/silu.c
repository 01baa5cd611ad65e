/* silu.c: CPU kernels for SiLU (ag_silu) and the fused SwiGLU activation
 * silu(gate) * up (ag_swiglu). */
#include "cpu_kernels.h"

#define CPU_TEMPLATE "silu.tmpl.h"
#include "instantiate.h"

static void *grad_data(const struct tensor *t)
{
	return t && t->grad ? t->grad->data : NULL;
}

void cpu_silu_forward(struct ag_node *n)
{
	CPU_DISPATCH(n->out->dtype, silu_fwd, tensor_numel(n->out), n->in[0]->data,
		     n->out->data);
}

void cpu_silu_backward(struct ag_node *n)
{
	CPU_DISPATCH(n->out->dtype, silu_bwd, tensor_numel(n->out), n->in[0]->data,
		     n->out->grad->data, n->in[0]->grad->data);
}

void cpu_swiglu_forward(struct ag_node *n)
{
	CPU_DISPATCH(n->out->dtype, swiglu_fwd, tensor_numel(n->out), n->in[0]->data,
		     n->in[1]->data, n->out->data);
}

void cpu_swiglu_backward(struct ag_node *n)
{
	void *dg = grad_data(n->in[0]), *du = grad_data(n->in[1]);
	if (!dg && !du)
		return;
	CPU_DISPATCH(n->out->dtype, swiglu_bwd, tensor_numel(n->out), n->in[0]->data,
		     n->in[1]->data, n->out->grad->data, dg, du);
}
