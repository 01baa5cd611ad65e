/* param.h: the parameter registry. Every parameter of a model is a tensor
 * in the model's parameter arena registered under its Hugging Face name
 * ("transformer.h.3.mlp.dense_h_to_4h.weight"), so loading, saving,
 * optimizers, LoRA targeting and parallel sharding address parameters by
 * name. */
#ifndef HUG_NN_PARAM_H
#define HUG_NN_PARAM_H

#include <stdbool.h>

#include "../autograd/tensor.h"

#define PARAM_NAME_MAX 128

/* How a tensor-parallel rank's tensor sits in the whole parameter: the
 * slice [offset, offset + t->shape[dim]) of dimension `dim` of a tensor of
 * full_shape. dim -1: the rank holds the whole (replicated) tensor. */
struct param_shard {
	int dim;
	int64_t offset;
	int64_t full_shape[TENSOR_MAX_DIMS];
};

struct param {
	char *name;           /* owned by the table; also t->name */
	struct tensor *t;     /* the value; t->grad when trainable */
	bool no_decay;        /* biases and LayerNorm weights: no weight decay */
	struct param_shard shard; /* dim -1 unless tensor parallel */
};

struct param_table {
	int n, cap;
	struct param *items;  /* in registration order */
};

/* An empty table. */
void param_table_init(struct param_table *pt);
void param_table_free(struct param_table *pt);

/* Registers t under `name` (copied; shorter than PARAM_NAME_MAX and not
 * registered yet: a panic otherwise, names come from code) and points
 * t->name at the copy. The returned pointer is valid until the next add. */
struct param *param_table_add(struct param_table *pt, const char *name,
			      struct tensor *t, bool no_decay);

/* Marks p as the slice [offset, offset + len) of dimension dim of a
 * parameter whose size along dim is `full`. */
void param_set_shard(struct param *p, int dim, int64_t offset, int64_t full);

/* The row-major index in the whole parameter of element i of p's tensor. */
int64_t param_global_index(const struct param *p, int64_t i);

/* Host tensors: copies p's slice out of `full` (the whole parameter's
 * shape, p->t's dtype) into `dst` (p->t's shape): the shard's values. */
void param_slice_from_full(const struct param *p, const struct tensor *full,
			   struct tensor *dst);
/* Host tensors: writes `src` (p->t's shape) into p's slice of `full`,
 * leaving the rest of `full` untouched. */
void param_slice_into_full(const struct param *p, const struct tensor *src,
			   struct tensor *full);

/* The parameter called `name`, or NULL. */
struct param *param_table_find(const struct param_table *pt, const char *name);

/* Sum of numel over every parameter. */
int64_t param_table_numel(const struct param_table *pt);

#endif
