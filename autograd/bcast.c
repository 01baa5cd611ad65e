/* bcast.c: the broadcast layout of binary element-wise nodes (bcast.h). */
#include "bcast.h"

#include "tensor.h"

/* Strides of t (contiguous) seen from an output of `nd` dims, padded to 4. */
static void bcast_strides(const struct tensor *t, int nd, const int64_t *oshape,
			  int64_t *s4)
{
	int64_t cs[TENSOR_MAX_DIMS];
	tensor_contiguous_strides(t->ndim, t->shape, cs);
	for (int d = 0; d < 4; d++)
		s4[d] = 0;
	for (int d = 0; d < nd; d++) {
		int dt = d - (nd - t->ndim);
		int d4 = d + (4 - nd);
		if (dt >= 0 && t->shape[dt] == oshape[d] && oshape[d] != 1)
			s4[d4] = cs[dt];
	}
}

struct ag_bcast ag_bcast_of(const struct ag_node *n)
{
	const struct tensor *o = n->out;
	struct ag_bcast bc;
	for (int d = 0; d < 4; d++)
		bc.shape[d] = d < 4 - o->ndim ? 1 : o->shape[d - (4 - o->ndim)];
	bcast_strides(n->in[0], o->ndim, o->shape, bc.sa);
	bcast_strides(n->in[1], o->ndim, o->shape, bc.sb);
	return bc;
}
