/* embedding.c: CPU kernels for the embedding lookup, and the range check of
 * ids and targets (the backend's find_out_of_range). */
#include "cpu_kernels.h"
#include "../../base/panic.h"

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

int64_t cpu_find_out_of_range(const struct tensor *t, int64_t lo, int64_t hi, int64_t skip,
			      int32_t *value)
{
	HUG_ASSERT(t->dtype == DT_I32 && tensor_is_contiguous(t));
	const int32_t *v = t->data;
	int64_t n = tensor_numel(t);
	for (int64_t i = 0; i < n; i++)
		if ((v[i] < lo || v[i] >= hi) && v[i] != skip) {
			*value = v[i];
			return i;
		}
	return -1;
}
