/* ag_env.c: the arenas and context of ag_env.h. */
#include "ag_env.h"

void ag_env_init(struct ag_env *e, size_t step_chunk)
{
	arena_init(&e->model, "model", 0, NULL);
	arena_init(&e->step, "step", step_chunk, NULL);
	ag_ctx_init(&e->ctx, &e->step);
}

void ag_env_free(struct ag_env *e)
{
	ag_ctx_free(&e->ctx);
	arena_free(&e->step);
	arena_free(&e->model);
}
