/* ag_env.h: the set-up of the autograd tests: a "model" arena for leaves,
 * inputs and their gradients, a "step" arena for one step's graph, and an
 * autograd context over the step arena. */
#ifndef HUG_TESTS_AG_ENV_H
#define HUG_TESTS_AG_ENV_H

#include <stddef.h>

#include "../autograd/autograd.h"

struct ag_env {
	struct arena model; /* leaves, inputs, gradients */
	struct arena step;  /* the step's graph (ag_ctx_reset frees it) */
	struct ag_ctx ctx;
};

/* Initializes both arenas (the step arena's first chunk is step_chunk
 * bytes; 0: the default) and ctx over the step arena. */
void ag_env_init(struct ag_env *e, size_t step_chunk);

/* Frees both arenas. */
void ag_env_free(struct ag_env *e);

#endif
