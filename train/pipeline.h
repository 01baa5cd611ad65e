/* pipeline.h: pipeline parallelism in the trainer (recipe
 * parallel.pipeline P). The blocks split into P contiguous stages
 * (pipeline_schedule.h); stage s runs blocks [lo, hi) through
 * model_forward_stage, the first with the embedding, the last with the
 * final norm, the head and the loss. Each step runs the 1F1B schedule over
 * the step's micro-batches: activations (B, T, C) go forward and their
 * gradients backward over MPI point-to-point in the pipeline group (device
 * tensors are staged through host memory), each in-flight micro-batch on
 * its own tape. Only the stage's parameters are trained here (the
 * optimizer, the data-parallel reduction and ZeRO-1 see the stage's
 * table); the other blocks' weights are still allocated on every rank and
 * brought up to date by pipeline_sync_params before a checkpoint, an
 * evaluation or generation. Tied embeddings: the last stage uses the
 * first stage's embedding as its head; after backward its gradient is
 * added to the first stage's (as Megatron does), the first stage updates
 * the weight and sends it back to the last after each update.
 *
 * Not yet: the other blocks' memory (every rank allocates the whole
 * model), interleaved virtual stages, LoRA and bf16 with stages, NCCL
 * point-to-point for device buffers. */
#ifndef HUG_TRAIN_PIPELINE_H
#define HUG_TRAIN_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/error.h"
#include "../nn/param.h"

struct trainer;
struct pipeline;

/* Sets up t's stage (t->model built, t->par laid out with pp > 1): the
 * split from the recipe (parallel.pipeline_layers or balanced), the
 * stage's parameter table, the tied-embedding group and the per-micro-
 * batch tapes; t->pipe is set. 0 or -1 with err (naming the recipe key). */
int pipeline_init(struct trainer *t, struct hug_error *err);
void pipeline_free(struct pipeline *p);

/* The trainable parameters of this stage (views of the model's). */
struct param_table *pipeline_table(struct pipeline *p);

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

/* Every rank's copy of every parameter made equal to its owning stage's
 * (collective over the pipeline group; nothing without stages). */
void pipeline_sync_params(const struct trainer *t);

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
