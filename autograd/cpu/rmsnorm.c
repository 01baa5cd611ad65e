/* rmsnorm.c: CPU kernels for RMSNorm over the last dim (ag_rmsnorm). */
#include "cpu_kernels.h"

#define CPU_TEMPLATE "rmsnorm.tmpl.h"
#include "instantiate.h"

static void *data_or_null(const struct tensor *t)
{
	return t ? t->data : NULL;
}

static int64_t rows_of(const struct tensor *x, int64_t c)
{
	return c ? tensor_numel(x) / c : 0;
}

void cpu_rmsnorm_forward(struct ag_node *n)
{
	const struct tensor *x = n->in[0];
	int64_t c = x->shape[x->ndim - 1];
	CPU_DISPATCH(x->dtype, rmsnorm_fwd, rows_of(x, c), c, n->p.rmsnorm.eps, x->data,
		     data_or_null(n->in[1]), n->out->data, n->saved[0]->data);
}

void cpu_rmsnorm_backward(struct ag_node *n)
{
	const struct tensor *x = n->in[0], *w = n->in[1];
	int64_t c = x->shape[x->ndim - 1];
	int64_t rows = rows_of(x, c);
	if (x->grad)
		CPU_DISPATCH(x->dtype, rmsnorm_bwd_dx, rows, c, x->data, data_or_null(w),
			     n->saved[0]->data, n->out->grad->data, x->grad->data);
	if (w && w->grad)
		CPU_DISPATCH(x->dtype, rmsnorm_bwd_dw, rows, c, x->data, n->saved[0]->data,
			     n->out->grad->data, w->grad->data);
}
