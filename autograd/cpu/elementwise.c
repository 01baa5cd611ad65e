/* elementwise.c: CPU kernels for add, mul (broadcasting), scale, GeLU,
 * dropout, and the backend's accumulate and fill. */
#include <string.h>

#include "cpu_kernels.h"
#include "../../base/panic.h"
#include "../bcast.h"
#include "../rng.h"

#define CPU_TEMPLATE "elementwise.tmpl.h"
#include "instantiate.h"

static void binary_forward(struct ag_node *n, bool is_mul)
{
	struct ag_bcast bc = ag_bcast_of(n);
	CPU_DISPATCH(n->out->dtype, binary_fwd, &bc, n->in[0]->data,
		     n->in[1]->data, n->out->data, is_mul);
}

static void binary_backward(struct ag_node *n, bool is_mul)
{
	struct ag_bcast bc = ag_bcast_of(n);
	const void *dout = n->out->grad->data;
	int64_t numel = tensor_numel(n->out);
	for (int i = 0; i < 2; i++) {
		struct tensor *x = n->in[i];
		if (!x->grad)
			continue;
		const struct tensor *other = n->in[1 - i];
		const int64_t *sx = i == 0 ? bc.sa : bc.sb;
		const int64_t *so = i == 0 ? bc.sb : bc.sa;
		bool full = tensor_numel(x) == numel;
		CPU_DISPATCH(x->dtype, binary_bwd, &bc, x->grad->data, sx, dout,
			     is_mul ? other->data : NULL, so, full);
	}
}

void cpu_add_forward(struct ag_node *n) { binary_forward(n, false); }
void cpu_add_backward(struct ag_node *n) { binary_backward(n, false); }
void cpu_mul_forward(struct ag_node *n) { binary_forward(n, true); }
void cpu_mul_backward(struct ag_node *n) { binary_backward(n, true); }

void cpu_scale_forward(struct ag_node *n)
{
	double a = n->p.scale.alpha;
	CPU_DISPATCH(n->out->dtype, scale_fwd, tensor_numel(n->out), a,
		     n->in[0]->data, n->out->data);
}

void cpu_scale_backward(struct ag_node *n)
{
	double a = n->p.scale.alpha;
	CPU_DISPATCH(n->out->dtype, axpy, tensor_numel(n->out), a,
		     n->out->grad->data, n->in[0]->grad->data);
}

void cpu_gelu_forward(struct ag_node *n)
{
	CPU_DISPATCH(n->out->dtype, gelu_fwd, tensor_numel(n->out),
		     n->in[0]->data, n->out->data);
}

void cpu_gelu_backward(struct ag_node *n)
{
	CPU_DISPATCH(n->out->dtype, gelu_bwd, tensor_numel(n->out),
		     n->in[0]->data, n->out->grad->data, n->in[0]->grad->data);
}

void cpu_dropout_forward(struct ag_node *n)
{
	CPU_DISPATCH(n->out->dtype, dropout_apply, tensor_numel(n->out),
		     n->p.dropout.p, n->p.dropout.seed, n->p.dropout.offset,
		     n->in[0]->data, n->out->data, false);
}

void cpu_dropout_backward(struct ag_node *n)
{
	CPU_DISPATCH(n->out->dtype, dropout_apply, tensor_numel(n->out),
		     n->p.dropout.p, n->p.dropout.seed, n->p.dropout.offset,
		     n->out->grad->data, n->in[0]->grad->data, true);
}

void cpu_accumulate(struct tensor *dst, const struct tensor *src)
{
	CPU_DISPATCH(dst->dtype, axpy, tensor_numel(dst), 1.0, src->data, dst->data);
}

void cpu_scale(struct tensor *t, double a)
{
	HUG_ASSERT(tensor_is_contiguous(t) && (t->dtype == DT_F32 || t->dtype == DT_F64));
	CPU_DISPATCH(t->dtype, scale_fwd, tensor_numel(t), a, t->data, t->data);
}

void cpu_fill(struct tensor *t, double value)
{
	if (tensor_is_contiguous(t) && (t->dtype == DT_F32 || t->dtype == DT_F64))
		CPU_DISPATCH(t->dtype, fill, tensor_numel(t), value, t->data);
	else
		tensor_fill(t, value);
}
