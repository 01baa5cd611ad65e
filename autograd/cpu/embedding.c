/* embedding.c: CPU kernels for the embedding lookup. */
#include "cpu_kernels.h"

#define CPU_TEMPLATE "embedding.tmpl.h"
#include "instantiate.h"

void cpu_embedding_forward(struct ag_node *n)
{
	const struct tensor *ids = n->in[0], *w = n->in[1];
	CPU_DISPATCH(w->dtype, embedding_fwd, tensor_numel(ids), w->shape[1], ids->data,
		     n->p.embedding.vocab_offset, w->shape[0], w->data, n->out->data);
}

void cpu_embedding_backward(struct ag_node *n)
{
	const struct tensor *ids = n->in[0], *w = n->in[1];
	if (!w->grad)
		return;
	CPU_DISPATCH(w->dtype, embedding_bwd, tensor_numel(ids), w->shape[1], ids->data,
		     n->p.embedding.vocab_offset, w->shape[0], n->out->grad->data,
		     w->grad->data);
}
