/* zero.h: ZeRO-2 and ZeRO-3 over the data-parallel group, the part of
 * train/dist.c's job beyond ZeRO-1. The trainable parameters are split
 * into groups: one per transformer block (named <block_prefix><i>.) and
 * one for the rest (embedding, final norm, head). Flattened in table order
 * they are cut into dp contiguous ranges, as ZeRO-1 does: rank r's
 * optimizer owns range r.
 *
 * ZeRO-2: the gradients of block i live in one of two ring buffers
 * (block i in slot i % 2) instead of a gradient buffer per parameter; the
 * moment backward has completed a group's gradients (autograd's leaf
 * hook), they are reduce-scattered (non-blocking, uneven pieces) to the
 * ranks that own them and added to this rank's shard, and the slot is
 * zeroed for block i - 2 once that reduction is done. Every micro-batch
 * reduces this way (gradient accumulation adds into the shard). After the
 * update, the parameters are all-gathered group by group through the same
 * slots.
 *
 * ZeRO-3: in addition the values of block i live in one of two ring
 * buffers and in this rank's shard of the flattened parameters; the model's
 * forward calls autograd's block hook before block i, which waits for the
 * gather of block i and starts that of block i + 1 (prefetch); in backward,
 * completing block i's gradients waits for the gather of block i - 1 and
 * starts block i - 2's. The embedding, final norm and head are gathered
 * once before the forward and held through the step.
 *
 * Host buffers go over MPI (MPI_Ireduce_scatter, MPI_Iallgatherv), device
 * buffers over NCCL on its side stream (parallel/comm.h). On the host the
 * model's own parameter (ZeRO-3) and gradient memory of the blocks is given
 * back to the system (madvise); on a GPU it stays allocated. Only
 * trainable parameters take part (LoRA: the adapters). */
#ifndef HUG_TRAIN_ZERO_H
#define HUG_TRAIN_ZERO_H

#include <stdbool.h>
#include <stdint.h>

#include "../autograd/autograd.h"
#include "../optim/optimizer.h"

struct dist;
struct zero;

/* Sets up level 2 or 3 for dist d (its table, offsets, chunk, device and
 * group already set, dp > 1): groups by `block_prefix` ("transformer.h."),
 * buffers, and with level 3 the parameters moved into the shard. */
struct zero *zero_new(struct dist *d, int level, const char *block_prefix);
void zero_free(struct zero *z);

/* Level 3: installs the block hook on ctx (forward gathers); level 2:
 * nothing. */
void zero_attach(struct zero *z, struct ag_ctx *ctx);
/* Level 3, before every forward: the non-block parameters gathered (once
 * per update), block 0's gather started. */
void zero_before_forward(struct zero *z);
/* Before each micro-batch's backward (ctx's tape holds its forward):
 * installs the gradient hook; the first of a step zeroes the shard. */
void zero_arm(struct zero *z, struct ag_ctx *ctx);
/* After the last micro-batch's backward: every reduction done, the shard
 * averaged over the ranks, the hook removed. */
void zero_finish_grads(struct zero *z, struct ag_ctx *ctx);
/* Points the optimizer's slots at the shard buffers. */
void zero_retarget(struct zero *z, struct optimizer *o);
/* After the update: level 2 all-gathers the parameters; level 3 marks
 * every gathered copy stale. */
void zero_after_update(struct zero *z);
/* Level 3: every parameter whole in the model's own memory (for saving
 * or loading a checkpoint), and back into the shard afterwards; level 2:
 * nothing. Collective over the data-parallel group. */
void zero_unshard(struct zero *z);
void zero_reshard(struct zero *z);

#endif
