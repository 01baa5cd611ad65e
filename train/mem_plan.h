/* mem_plan.h: the memory and FLOPs plan of a training layout, computed from
 * a model config without allocating anything: per-rank bytes of the
 * parameters (and their bf16 working copy), gradients, optimizer state,
 * activations (with and without recomputation), logits and their gradient,
 * communication buffers and the KV cache for generation, plus FLOPs per
 * step. The activation model counts what hug's autograd tape keeps in the
 * step arena (every op output, saved statistic and gradient buffer of one
 * micro-batch; see docs/plan.md); `hug plan` prints it and `hug train`
 * prints it at start-up. */
#ifndef HUG_TRAIN_MEM_PLAN_H
#define HUG_TRAIN_MEM_PLAN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../nn/model.h"

enum mem_recompute {
	MEM_RECOMPUTE_NONE,      /* every activation kept for backward */
	MEM_RECOMPUTE_BLOCK,     /* each block's input kept, the block redone in backward */
	MEM_RECOMPUTE_SELECTIVE, /* attention probabilities and the MLP activation redone */
};

enum mem_attention {
	MEM_ATTN_EXACT,          /* the (B, H, T, T) probabilities kept */
	MEM_ATTN_FLASH,          /* tiled online softmax: O(T) per head */
};

/* A training layout: how a model is trained, on how many ranks. */
struct mem_layout {
	int dp, tp, pp;          /* data, tensor and pipeline parallel degrees (>= 1) */
	int zero;                /* ZeRO stage 0-3 over the data-parallel ranks */
	enum mem_recompute recompute;
	enum mem_attention attention;
	bool bf16;               /* bf16 compute from f32 master weights */
	bool cuda;               /* device cuda (no CPU attention scratch) */
	int64_t micro_batch;     /* sequences per micro-batch per data-parallel rank */
	int64_t seq_len;
	int64_t accumulation;    /* micro-batches per optimizer step */
	int lora_r;              /* 0: full fine-tuning */
	int64_t lora_params;     /* trainable adapter parameters (lora_count_params) */
	int lora_n;              /* adapted layers per block */
	int64_t lora_out;        /* sum of the adapted layers' out features, per block */
	int64_t lora_in;         /* sum of their in features, per block (dropout copies) */
	bool lora_dropout;       /* adapter dropout > 0 */
	int n_moments;           /* optimizer moments per trainable parameter (AdamW 2) */
	int64_t kv_batch, kv_len; /* KV cache for generation; 0: sequences of seq_len, batch 1 */
};

/* Per-rank bytes (the busiest rank: the first pipeline stage) and counts. */
struct mem_plan {
	int64_t params_total, params_trainable; /* whole model */
	int64_t params_rank;          /* parameters this rank holds (before ZeRO-3) */
	int64_t params;               /* f32 parameters (master weights) */
	int64_t params_cast;          /* bf16 working copy of them (step memory) */
	int64_t grads;                /* f32 gradients */
	int64_t grads_cast;           /* bf16 gradients of the working copy (step memory) */
	int64_t optim;                /* optimizer moments */
	int64_t activations;          /* the blocks' activations and their gradients */
	int64_t activations_none;     /* the same without recomputation */
	int64_t attn_probs;           /* of activations: the kept T x T probabilities */
	int64_t logits;               /* logits and their gradient (last stage) */
	int64_t comm;                 /* communication buffers */
	int64_t checkpoint;           /* saving: the optimizer state gathered whole (and,
				       * under TP, the parameters) into host copies */
	int64_t kv_cache;             /* generation's KV cache (not part of the peak) */
	int64_t peak;                 /* sum of the training terms (on a GPU without
				       * checkpoint, which is host memory there) */
	int64_t layers;               /* blocks on the busiest stage */
	int64_t in_flight;            /* micro-batches whose activations a stage holds */
	double flops_per_step;        /* training FLOPs of one optimizer step, all ranks */
	double flops_per_rank;        /* of them, one rank's */
	int64_t tokens_per_step;      /* global */
};

/* A layout of one rank training in f32 with batch 1 (callers change the
 * fields they know). */
void mem_layout_default(struct mem_layout *l);

struct recipe;

/* The layout recipe r describes for `world` processes (dp = world /
 * (parallel.tensor x parallel.pipeline); ZeRO, recomputation, precision,
 * batch, sequence, accumulation, LoRA targets from the recipe; the
 * attention kernel training runs by default, ag_attention_default_tiled). */
void mem_layout_of_recipe(const struct recipe *r, int world, struct mem_layout *l);

/* Checks the layout against the config (degrees >= 1, stages and tensor
 * ranks dividing layers and heads, ZeRO 0-3): 0, or -1 with err naming the
 * offending setting. */
int mem_layout_validate(const struct model_config *cfg, const struct mem_layout *l,
			struct hug_error *err);

/* Computes the plan of cfg under l (validated). */
void mem_plan_compute(const struct model_config *cfg, const struct mem_layout *l,
		      struct mem_plan *p);

/* Bytes as "12.3 MiB" into buf. */
const char *mem_human(int64_t bytes, char *buf, size_t n);

/* Prints the plan as a table, one line per term; `overhead` (bytes, 0:
 * none) is added as the process's fixed overhead line. `indent` prefixes
 * every line. */
void mem_plan_print(const struct mem_plan *p, const struct mem_layout *l, int64_t overhead,
		    const char *indent, FILE *out);

#endif
