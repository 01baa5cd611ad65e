/* trainer.h: the training loop's state and steps: model, optimizer, data,
 * the step (micro-batches with gradient accumulation, clipping, the
 * non-finite guard, the update), validation, and metrics. The driver
 * (cli/train.c) decides when to log, evaluate, checkpoint and stop. */
#ifndef HUG_TRAIN_TRAINER_H
#define HUG_TRAIN_TRAINER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../autograd/autograd.h"
#include "../data/loader.h"
#include "../nn/model.h"
#include "../optim/optimizer.h"
#include "dist.h"
#include "recipe.h"

struct lora_model;

struct trainer {
	struct recipe *r;              /* borrowed */
	struct parallel *par;          /* the process layout (borrowed, or &single) */
	struct parallel single;        /* a world of one, for trainer_init */
	struct dist dist;              /* gradient reduction, ZeRO-1/2/3 */
	struct pipeline *pipe;         /* pipeline stage (train/pipeline.h), or NULL */
	int rank, world;               /* data-parallel rank and degree */
	enum device device;            /* where the model and the step live */
	struct model model;            /* on that device; frozen under LoRA */
	struct model cast_view;        /* its bf16 view (precision bf16), remade each step */
	struct lora_model *lora;       /* LoRA adapters (recipe peft), or NULL */
	struct optimizer opt;
	struct loader *train;
	struct loader *valid;          /* data.valid sources, or NULL */
	struct loader_state valid_start; /* each evaluation replays the same batches */
	struct arena step_mem;         /* activations, tape */
	struct arena batch_mem;        /* the batch buffers on the host */
	struct arena dev_batch_mem;    /* their copies on the device (GPU runs) */
	struct ag_ctx ctx;
	struct tensor *inputs;         /* (B, T) i32 on the host: the loader fills it */
	struct tensor *targets;        /* (B, T) i32 on the host, -100 where ignored */
	struct tensor *step_inputs;    /* inputs on the device (inputs itself on the CPU) */
	struct tensor *step_targets;   /* targets on the device (targets itself on the CPU) */
	struct tensor *segments;       /* data.packing "document": (B, T) i32 document
					  ids on the host, else NULL */
	struct tensor *step_segments;  /* segments on the device (segments itself on the CPU) */
	int32_t eos;                   /* the shards' EOS id (-1: none) */
	int32_t *step_batches;         /* a step's micro-batches, inputs then targets,
					  (micro, 2, B, T) on the host */
	size_t step_batches_cap;       /* micro-batches step_batches holds */
	/* progress; saved in trainer_state.json */
	int64_t step;                  /* optimizer updates done */
	int64_t samples_seen;          /* sequences consumed by all ranks */
	int64_t tokens_seen;           /* input tokens consumed by all ranks */
	int64_t skipped_steps;         /* non-finite steps skipped */
	int64_t consecutive_skips;     /* of them, skipped since the last update */
	double flops_per_token;        /* training FLOPs per token (6N + attention) */
};

/* Result of one optimizer step. */
struct step_result {
	double loss;                   /* token-loss sum / target_tokens, all ranks */
	int64_t target_tokens;         /* counted (not ignored) targets of the step,
					  all micro-batches and ranks */
	double grad_norm;              /* before clipping */
	double lr;
	int64_t batch;                 /* global batch size of this step */
	bool skipped;                  /* non-finite and skip_nonfinite set, or no
					  counted target in the whole step */
};

/* Builds the model (initialised from the seed, or from_pretrained), the
 * optimizer and the loaders for recipe r. With device "cuda" the model is
 * built on the host, then moved to the GPU (this process's local rank;
 * with more than one process NCCL is set up first), where the optimizer
 * state and every step stay; "bf16" precision computes in bf16 from the
 * f32 master weights. 0, or -1 with err and nothing left to free. */
int trainer_init(struct trainer *t, struct recipe *r, struct hug_error *err);
/* As trainer_init, for this process's place in `par` (after
 * parallel_set_layout with the recipe's parallel.tensor): the model holds
 * this rank's tensor-parallel shards, the loader this data-parallel rank's
 * samples, the optimizer (with ZeRO-1) this rank's range. */
int trainer_init_parallel(struct trainer *t, struct recipe *r, struct parallel *par,
			  struct hug_error *err);
void trainer_free(struct trainer *t);

/* One optimizer step over the global batch (gradient accumulation over
 * micro-batches). The loss is normalised by the number of counted targets
 * (not -100) of the whole global batch, summed over micro-batches and
 * data-parallel ranks, so the update does not depend on how the batch is
 * split. A step with no counted target anywhere changes nothing: it is
 * skipped (res->skipped, target_tokens 0) with a warning. A non-finite
 * loss or gradient norm leaves parameters and optimizer state untouched: with skip_nonfinite the step is skipped
 * (res->skipped), otherwise it is an error naming the step. 0 or -1. */
int trainer_step(struct trainer *t, struct step_result *res, struct hug_error *err);

/* Validation loss: counted-token-weighted mean over up to eval_batches
 * micro-batches in all (the same batches every time), split over the
 * data-parallel ranks so the number does not depend on their count; NaN
 * when there is no validation data or no counted target. */
int trainer_eval(struct trainer *t, double *loss, struct hug_error *err);

#endif
