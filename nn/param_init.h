/* param_init.h: what every family's parameter code shares: a tensor-
 * parallel rank's share of a dimension, the arena bytes of a parameter
 * (for sizing the one block that holds them all), and transformers-style
 * normal initialisation from a counter-based stream, indexed over the
 * whole (unsharded) parameter so any TP layout gets the same values. */
#ifndef HUG_NN_PARAM_INIT_H
#define HUG_NN_PARAM_INIT_H

#include <stddef.h>
#include <stdint.h>

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

#endif
