/* norm.c: CPU kernels for layer norm and softmax over the last dim. */
#include "cpu_kernels.h"

#define CPU_TEMPLATE "norm.tmpl.h"
#include "instantiate.h"

static void *grad_data(const struct tensor *t)
{
	return t && t->grad ? t->grad->data : NULL;
}

static int64_t last_dim(const struct tensor *t)
{
	return t->shape[t->ndim - 1];
}

static int64_t rows_of(const struct tensor *t)
{
	int64_t c = last_dim(t);
	return c ? tensor_numel(t) / c : 0;
}

void cpu_layernorm_forward(struct ag_node *n)
{
	const struct tensor *x = n->in[0];
	CPU_DISPATCH(x->dtype, layernorm_fwd, rows_of(x), last_dim(x),
		     n->p.layernorm.eps, x->data, n->in[1]->data,
		     n->in[2] ? n->in[2]->data : NULL, n->out->data,
		     n->saved[0]->data, n->saved[1]->data);
}

void cpu_layernorm_backward(struct ag_node *n)
{
	const struct tensor *x = n->in[0];
	CPU_DISPATCH(x->dtype, layernorm_bwd, rows_of(x), last_dim(x), x->data,
		     n->in[1]->data, n->saved[0]->data, n->saved[1]->data,
		     n->out->grad->data, grad_data(x), grad_data(n->in[1]),
		     grad_data(n->in[2]));
}

void cpu_softmax_forward(struct ag_node *n)
{
	const struct tensor *x = n->in[0];
	CPU_DISPATCH(x->dtype, softmax_fwd, rows_of(x), last_dim(x), x->data,
		     n->out->data);
}

void cpu_softmax_backward(struct ag_node *n)
{
	const struct tensor *y = n->out;
	CPU_DISPATCH(y->dtype, softmax_bwd, rows_of(y), last_dim(y), y->data,
		     y->grad->data, n->in[0]->grad->data);
}
