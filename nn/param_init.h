/* param_init.h: what every family's parameter code shares: the two-pass
 * parameter builder, a tensor-parallel rank's share of a dimension, the
 * arena bytes of a parameter (for sizing the one block that holds them
 * all), and transformers-style normal initialisation from a counter-
 * based stream, indexed over the whole (unsharded) parameter so any TP
 * layout gets the same values. */
#ifndef HUG_NN_PARAM_INIT_H
#define HUG_NN_PARAM_INIT_H

#include <stddef.h>
#include <stdint.h>

#include "../autograd/arena.h"
#include "model.h"
#include "param.h"

/* Rank `rank` of `size`'s share [*offset, *offset + *len) of a dimension
 * of n (the first n % size ranks hold one more). */
void param_split(int rank, int size, int64_t n, int64_t *offset, int64_t *len);

/* Bytes an arena gives a tensor of numel elements of dt: its data rounded
 * to the arena alignment, plus the tensor header. */
size_t param_slot_bytes(int64_t numel, enum dtype dt);

/* Fills p's (host, f32 or f64) tensor with std * N(0, 1) drawn from the
 * stream `stream` at each element's index in the whole parameter (Box-
 * Muller on autograd/rng.h), so the values depend neither on the thread
 * count nor on the TP layout; row `zero_row` of the whole parameter
 * (dim 0; -1: none) is 0, as transformers zeroes an embedding's padding
 * row. */
void param_fill_normal(const struct param *p, uint64_t stream, double std, int64_t zero_row);

/* A family's parameters are made twice through one builder: first with
 * `measuring` set (nothing allocated; `measure` counts the arena bytes, so
 * params and grads can be sized to hold everything in one block), then
 * for real into params (and grads when trainable), each registered in
 * `table`. tp_rank/tp_size: this rank's place in a tensor-parallel group. */
struct param_builder {
	struct arena *params, *grads;
	struct param_table *table;
	enum dtype dtype;
	int tp_rank, tp_size;
	bool trainable, measuring;
	size_t measure;
	struct model_stage stage;  /* layer_hi 0: the whole model (param_builder_stage) */
	bool tied;                 /* the head uses the embedding */
};

/* `layer` of a parameter outside the blocks: before them (the embedding
 * and its norm) or after them (final norm, head). */
#define PARAM_BEFORE_BLOCKS (-1)
#define PARAM_AFTER_BLOCKS (-2)

/* Makes b build only the parameters of tp's pipeline stage (model_tp):
 * the others are skipped (param_builder_new returns NULL for them).
 * `tied`: the head is the embedding, kept on the last stage too. */
void param_builder_stage(struct param_builder *b, const struct model_tp *tp, bool tied);

/* A parameter of shape (rows[, cols]) (cols 0: 1-d) named fmt % layer
 * (layer: its block, or PARAM_BEFORE_BLOCKS / PARAM_AFTER_BLOCKS),
 * sharded along dim `shard` as this rank's slice (-1: replicated; the
 * shard spec is recorded when tp_size > 1); no_decay as param_table_add.
 * NULL while measuring, and for a parameter outside the builder's stage. */
struct tensor *param_builder_new(struct param_builder *b, const char *fmt, int layer,
				 bool no_decay, int shard, int64_t rows, int64_t cols);

#endif
