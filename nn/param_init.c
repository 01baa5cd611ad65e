/* param_init.c: TP shares, arena slot sizes, the two-pass parameter
 * builder and the counter-based normal initialisation the model families
 * share (param_init.h). */
#include "param_init.h"

#include <math.h>
#include <stdio.h>

#include "../autograd/arena.h"
#include "../autograd/rng.h"
#include "../base/panic.h"

void param_split(int rank, int size, int64_t n, int64_t *offset, int64_t *len)
{
	int64_t base = n / size, extra = n % size;
	*len = base + (rank < extra);
	*offset = rank * base + (rank < extra ? rank : extra);
}

size_t param_slot_bytes(int64_t numel, enum dtype dt)
{
	size_t data = (size_t)numel * dtype_size(dt);
	return (data + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN +
	       (sizeof(struct tensor) + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}

/* Standard normal number i of the stream (Box-Muller). */
static double normal(uint64_t stream, uint64_t i)
{
	double u1 = ((double)(rng_u64(stream, 2 * i) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
	double u2 = (double)(rng_u64(stream, 2 * i + 1) >> 11) * (1.0 / 9007199254740992.0);
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void param_fill_normal(const struct param *p, uint64_t stream, double std, int64_t zero_row)
{
	struct tensor *t = p->t;
	HUG_ASSERT(t->device == DEV_CPU && (t->dtype == DT_F32 || t->dtype == DT_F64));
	int64_t n = tensor_numel(t), row = 1;
	for (int d = 1; d < t->ndim; d++)
		row *= p->shard.full_shape[d];
#pragma omp parallel for if (n >= 65536)
	for (int64_t i = 0; i < n; i++) {
		int64_t g = param_global_index(p, i);
		double x = zero_row >= 0 && g / row == zero_row ? 0.0 : std * normal(stream, (uint64_t)g);
		if (t->dtype == DT_F32)
			((float *)t->data)[i] = (float)x;
		else
			((double *)t->data)[i] = x;
	}
}

void param_builder_stage(struct param_builder *b, const struct model_tp *tp, bool tied)
{
	b->stage = tp->stage;
	b->tied = tied;
}

/* Whether a parameter at `layer` belongs to the builder's stage. */
static bool in_stage(const struct param_builder *b, int layer)
{
	const struct model_stage *s = &b->stage;
	if (s->layer_hi <= 0)
		return true;
	if (layer == PARAM_BEFORE_BLOCKS)
		return s->embed || (s->head && b->tied);
	if (layer == PARAM_AFTER_BLOCKS)
		return s->head;
	return layer >= s->layer_lo && layer < s->layer_hi;
}

struct tensor *param_builder_new(struct param_builder *b, const char *fmt, int layer,
				 bool no_decay, int shard, int64_t rows, int64_t cols)
{
	if (!in_stage(b, layer))
		return NULL;
	int ndim = cols ? 2 : 1;
	int64_t shape[2] = { rows, cols }, offset = 0;
	if (shard >= 0)
		param_split(b->tp_rank, b->tp_size, shape[shard], &offset, &shape[shard]);
	if (b->measuring) {
		b->measure += param_slot_bytes(shape[0] * (cols ? shape[1] : 1), b->dtype);
		return NULL;
	}
	char name[PARAM_NAME_MAX];
	snprintf(name, sizeof(name), fmt, layer);
	struct tensor *t = tensor_new(b->params, b->dtype, ndim, shape);
	if (b->trainable)
		tensor_set_requires_grad(t, b->grads);
	struct param *p = param_table_add(b->table, name, t, no_decay);
	if (shard >= 0 && b->tp_size > 1)
		param_set_shard(p, shard, offset, shard ? cols : rows);
	return t;
}
