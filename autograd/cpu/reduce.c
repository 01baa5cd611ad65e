/* reduce.c: CPU kernels for sum and mean, over all elements or one dim. */
#include "cpu_kernels.h"
#include "../node_dims.h"

#define CPU_TEMPLATE "reduce.tmpl.h"
#include "instantiate.h"


static void reduce_forward(struct ag_node *n, bool mean)
{
	int64_t outer, k, inner;
	ag_reduce_dims(n, &outer, &k, &inner);
	double scale = mean ? (k ? 1.0 / (double)k : 0.0) : 1.0;
	enum dtype dt = n->out->dtype;
	if (n->p.reduce.dim == AG_DIM_ALL) {
		double s = CPU_DISPATCH(dt, sum_all, k, n->in[0]->data);
		CPU_DISPATCH(dt, store_scalar, n->out->data, s * scale);
	} else {
		CPU_DISPATCH(dt, sum_dim, outer, k, inner, scale, n->in[0]->data,
			     n->out->data);
	}
}

static void reduce_backward(struct ag_node *n, bool mean)
{
	int64_t outer, k, inner;
	ag_reduce_dims(n, &outer, &k, &inner);
	double scale = mean ? (k ? 1.0 / (double)k : 0.0) : 1.0;
	CPU_DISPATCH(n->out->dtype, sum_dim_bwd, outer, k, inner, scale,
		     n->out->grad->data, n->in[0]->grad->data);
}

void cpu_sum_forward(struct ag_node *n) { reduce_forward(n, false); }
void cpu_sum_backward(struct ag_node *n) { reduce_backward(n, false); }
void cpu_mean_forward(struct ag_node *n) { reduce_forward(n, true); }
void cpu_mean_backward(struct ag_node *n) { reduce_backward(n, true); }
