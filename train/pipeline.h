/* pipeline.h: pipeline parallelism in the trainer (recipe
 * parallel.pipeline P). The blocks split into P contiguous stages
 * (pipeline_schedule.h); the rank of stage s holds only that stage's
 * parameters (model_tp.stage: its blocks, the embedding on the first, the
 * final norm and head on the last) and runs them through
 * model_forward_stage. Each step runs the 1F1B schedule over the step's
 * micro-batches: activations (B, T, C) go forward and their gradients
 * backward over MPI point-to-point in the pipeline group (device tensors
 * are staged through host memory), each in-flight micro-batch on its own
 * tape. The optimizer, the data-parallel reduction and ZeRO-1 see the
 * stage's table. Tied embeddings: the last stage keeps a copy of the
 * embedding for its head; after backward its gradient is added to the
 * first stage's (as Megatron does), the first stage updates the weight and
 * sends it back after each update. Checkpoints gather every stage to
 * world rank 0 (the Hugging Face layout, as one process writes it), so
 * they load under any layout.
 *
 * Not yet: interleaved virtual stages, LoRA and bf16 with stages, NCCL
 * point-to-point for device buffers, the end-of-run samples. */
#ifndef HUG_TRAIN_PIPELINE_H
#define HUG_TRAIN_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/error.h"
#include "../nn/param.h"

struct trainer;
struct pipeline;

/* Sets up t's stage (t->model built whole on the host, t->par laid out
 * with pp > 1): the split from the recipe (parallel.pipeline_layers or
 * balanced by parameters), t->model replaced by this stage's part of it,
 * the tied-embedding group and the per-micro-batch tapes; t->pipe is set.
 * 0 or -1 with err (naming the recipe key). */
int pipeline_init(struct trainer *t, struct hug_error *err);
void pipeline_free(struct pipeline *p);

/* After the model has moved to its device: the parameters this stage
 * trains (views of t->model's; a tied embedding's copy on the last stage
 * is not one of them). */
struct param_table *pipeline_bind(struct trainer *t);

/* The step's `micro` micro-batches (t->step_batches) through the 1F1B
 * schedule: gradients accumulated as trainer_step's loop does (each
 * micro-batch's loss scaled by its counted targets x dp / global), the
 * data-parallel reduction armed before the stage's last backward. *sum +=
 * token-loss sums (on the last stage; 0 elsewhere). 0 or -1 with err. */
int pipeline_accumulate(struct trainer *t, int64_t micro, double global, double *sum,
			struct hug_error *err);

/* After the data-parallel reduction: the tied embedding's gradient summed
 * over the first and last stage, and *sum (this rank's token-loss sum,
 * known on the last stage) broadcast over the pipeline. */
void pipeline_finish_grads(struct trainer *t, double *sum);

/* The global gradient norm over every stage (each element counted once). */
double pipeline_grad_norm(struct trainer *t);

/* After the update (and ZeRO-1's gather): the first stage's updated tied
 * embedding copied to the last stage. */
void pipeline_after_update(struct trainer *t);

/* Checkpoints: after gather_params (params true) or gather_optimizer on
 * every rank, world rank 0's table receives the other stages' entries
 * (each parameter from the stage that trains it), in stage order.
 * Collective over the pipeline of world rank 0; nothing without stages. */
struct full_table;
void pipeline_gather(const struct trainer *t, struct full_table *f, bool params);

/* Loads this stage's parameters from checkpoint directory dir (a whole
 * model, saved under any layout). 0 or -1 with err. */
int pipeline_load_params(struct trainer *t, const char *dir, struct hug_error *err);

/* Validation: the batch in t->inputs / t->targets through the stages;
 * v[0] += token-loss sum, v[1] += counted targets on every stage.
 * Collective over the pipeline. 0 or -1. */
int pipeline_eval_batch(struct trainer *t, double v[2], struct hug_error *err);

/* The pipeline bubble over the steps run so far: the share of each
 * stage's 1F1B schedule spent blocked in receives, averaged over the
 * stages (collective over the pipeline group), against the theory
 * (P-1)/(m+P-1) at the mean micro-batch count m. All zero without
 * stages. Meaningful only with a core (or GPU) per stage: oversubscribed
 * ranks wait for the CPU as well. */
struct pipeline_bubble {
	int stages;
	double micro, measured, theory;
};
void pipeline_bubble(const struct trainer *t, struct pipeline_bubble *out);

/* The stage that trains parameter i of the model's table. */
int pipeline_owner(const struct pipeline *p, int i);

#endif
