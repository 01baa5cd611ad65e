/* dist.h: the training step's communication. Data parallelism: gradients
 * are all-reduced in buckets that start as soon as their gradients are
 * complete in the backward pass (overlapping the rest of it), then
 * averaged. ZeRO-1: gradients are reduce-scattered so each data-parallel
 * rank holds the sum for its own range of the flattened parameters, its
 * optimizer keeps state for that range only, and parameters are
 * all-gathered after the update. The global gradient norm counts every
 * element once under tensor parallelism (replicated parameters once, not
 * once per rank). In a world of one every function is a cheap no-op.
 *
 * The buffers live where the parameters do. The buckets' all-reduces start
 * during backward on both: over MPI for host buffers, over NCCL on a side
 * stream ordered after the backend's stream by events for device buffers
 * (comm_iallreduce); packing and unpacking are the backend's asynchronous
 * copy and scale. ZeRO-1's reduce-scatter and all-gather are blocking and
 * run after backward. ZeRO-2 and ZeRO-3 (gradients, and parameters,
 * sharded group by group during the step) are train/zero.h's; the
 * functions below hand over to it. */
#ifndef HUG_TRAIN_DIST_H
#define HUG_TRAIN_DIST_H

#include <stdbool.h>
#include <stdint.h>

#include "../autograd/autograd.h"
#include "../nn/param.h"
#include "../optim/optimizer.h"
#include "../parallel/comm.h"

struct dist_bucket {
	int first, last;          /* table indices [first, last] of its params */
	int64_t offset, numel;    /* its region of the flat buffer */
	int pending;              /* params whose gradient is not complete yet */
	struct comm_request req;
};

struct zero;

struct dist {
	struct parallel *par;     /* borrowed */
	struct param_table *table; /* borrowed */
	bool zero;                /* the optimizer state is sharded (ZeRO-1 and up) */
	int level;                /* parallel.zero in effect: 0 with one data-parallel rank */
	struct zero *z;           /* ZeRO-2/3 (train/zero.h), or NULL */
	int64_t total;            /* trainable elements */
	int64_t chunk;            /* ZeRO: elements per data-parallel rank */
	int64_t *offset;          /* per table entry: start in the flat order (-1 frozen) */
	int *bucket_of;           /* per table entry */
	struct dist_bucket *buckets;
	int n_buckets;
	enum device device;       /* of the trainable parameters and the buffers */
	struct arena mem;         /* the buffers, on that device */
	struct tensor *flat;      /* packed gradients (chunk x dp) f32 */
	struct tensor *part;      /* ZeRO: this rank's chunk (chunk) f32, or NULL */
	int *by_index;            /* trainable table indices sorted by tensor address */
	int n_trainable;
	int64_t bytes_moved;      /* per step, for reports */
};

/* Sets up the buckets (about bucket_bytes each; 0 picks 4 MiB for host
 * parameters, 32 MiB for device ones) and buffers for the trainable f32
 * parameters of pt, for ZeRO level `zero` (0-3; 2 and 3 group the
 * parameters by transformer block, named block_prefix + "<i>.", see
 * train/zero.h). */
void dist_init(struct dist *d, struct parallel *par, struct param_table *pt, int zero,
	       const char *block_prefix, size_t bucket_bytes);
void dist_free(struct dist *d);

/* The range [lo, hi) of the flattened trainable elements this rank's
 * optimizer updates: everything, or its ZeRO-1 chunk. */
void dist_optim_range(const struct dist *d, int64_t *lo, int64_t *hi);

/* Before the backward of each micro-batch of a step (`last`: the step's
 * last): starts each bucket's all-reduce from ctx's gradient hook as soon
 * as it is complete (plain data parallelism with more than one rank, last
 * micro-batch only); ZeRO-2/3 reduce-scatter every micro-batch's
 * gradients group by group. Otherwise nothing. */
void dist_arm(struct dist *d, struct ag_ctx *ctx, bool last);

/* Once, on the step context: ZeRO-3's block hook (autograd's on_block). */
void dist_attach(struct dist *d, struct ag_ctx *ctx);
/* Before every forward: ZeRO-3 gathers what the forward needs first. */
void dist_before_forward(struct dist *d);
/* ZeRO-3: every parameter whole in the model's own tensors (before a
 * checkpoint is written or read), and sharded again after. Collective
 * over the data-parallel group; nothing at other levels. */
void dist_unshard(struct dist *d);
void dist_reshard(struct dist *d);
/* Points the optimizer at ZeRO-2/3's shard buffers (nothing otherwise). */
void dist_retarget(struct dist *d, struct optimizer *o);

/* The table index of trainable tensor t, or -1. */
int dist_index_of(const struct dist *d, const struct tensor *t);

/* After that backward: completes the gradient reduction (waits for the
 * buckets and averages; or ZeRO's reduce-scatter into this rank's range)
 * and removes the hook. */
void dist_finish_grads(struct dist *d, struct ag_ctx *ctx);

/* The global L2 norm of the gradients the optimizer o sees (its range),
 * over all ranks, each element counted once. */
double dist_grad_norm(struct dist *d, const struct optimizer *o);

/* ZeRO-1 and -2, after the update: every rank receives every updated
 * parameter (ZeRO-3: the gathered copies become stale). */
void dist_gather_params(struct dist *d);

#endif
