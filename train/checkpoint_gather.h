/* checkpoint_gather.h: whole tensors for checkpoints under any parallel
 * layout. Saving gathers tensor-parallel shards and ZeRO-1 optimizer ranges
 * into full tensors with Hugging Face names (the same files a single
 * process writes); loading reads full tensors and keeps this rank's part,
 * so a run saved at one layout resumes at another. Every rank calls these
 * (they are collective); only the writer needs the results. */
#ifndef HUG_TRAIN_CHECKPOINT_GATHER_H
#define HUG_TRAIN_CHECKPOINT_GATHER_H

#include "trainer.h"

/* A table of full-shape host tensors in its own arena. */
struct full_table {
	struct arena mem;
	struct param_table pt;
};

void full_table_free(struct full_table *f);

/* The model's parameters as whole tensors (tensor-parallel shards
 * gathered); the table holds the values, with the model's names. */
void gather_params(const struct trainer *t, const struct param_table *local,
		   struct full_table *out);

/* The optimizer state as whole tensors named "<state>.<param>" (state:
 * exp_avg, exp_avg_sq, or momentum_buffer), each of its parameter's full
 * shape (ZeRO-1 ranges and tensor-parallel shards gathered). */
void gather_optimizer(const struct trainer *t, struct full_table *out);

/* Fills the local (possibly sharded) parameters of `local` from the
 * weights in dir: directly without tensor parallelism, else through full
 * tensors. 0 or -1 with err. */
int scatter_params(const struct trainer *t, struct param_table *local, const char *dir,
		   struct hug_error *err);

/* Fills this rank's optimizer state from dir/optimizer.safetensors. */
int scatter_optimizer(struct trainer *t, const char *dir, struct hug_error *err);

/* The state names of the optimizer kind: 2 for AdamW, 1 (momentum) or 0 for SGD. */
int optimizer_state_names(const struct optimizer *o, const char *names[2]);

#endif
