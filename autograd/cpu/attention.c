/* attention.c: CPU kernels for the fused ALiBi causal self-attention. */
#include "cpu_kernels.h"
#include "../rng.h"

/* Sizes of an attention node. */
struct attn_shape {
	int64_t b, h, tq, tk, d;
};

#define CPU_TEMPLATE "attention.tmpl.h"
#include "instantiate.h"

static struct attn_shape attn_shape(const struct ag_node *n)
{
	const struct tensor *q = n->in[0], *k = n->in[1];
	return (struct attn_shape){ q->shape[0], q->shape[1], q->shape[2],
				    k->shape[2], q->shape[3] };
}

void cpu_attention_forward(struct ag_node *n)
{
	struct attn_shape as = attn_shape(n);
	CPU_DISPATCH(n->out->dtype, attention_fwd, &as, n);
}

void cpu_attention_backward(struct ag_node *n)
{
	struct attn_shape as = attn_shape(n);
	CPU_DISPATCH(n->out->dtype, attention_bwd, &as, n);
}
