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

struct param {
	char *name;           /* owned by the table; also t->name */
	struct tensor *t;     /* the value; t->grad when trainable */
	bool no_decay;        /* biases and LayerNorm weights: no weight decay */
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

/* The parameter called `name`, or NULL. */
struct param *param_table_find(const struct param_table *pt, const char *name);

/* Sum of numel over every parameter. */
int64_t param_table_numel(const struct param_table *pt);

#endif
