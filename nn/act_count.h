/* act_count.h: what one training step of a family's forward and backward
 * leaves in the step arena, per token, counted from the family's forward
 * (nn/bloom.c, nn/llama.c) and the autograd ops: each op's output, its
 * saved statistics and one gradient buffer per non-leaf tensor that takes
 * part in backward (a slice or permute view gets its own buffer; only a
 * plain reshape view shares its input's). The attention probabilities,
 * which grow with T, are the caller's (train/mem_plan.c). */
#ifndef HUG_NN_ACT_COUNT_H
#define HUG_NN_ACT_COUNT_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

/* Elements per token: `fwd`/`grad` in the compute dtype, `*stat` in f32. */
struct model_act_count {
	int64_t fwd, grad;           /* one block: op outputs / gradient buffers */
	int64_t stat;                /* one block: norm statistics */
	int64_t mlp_act;             /* of fwd: the MLP activation's output */
	int64_t embed, embed_stat;   /* before the blocks: the lookup, its TP copy,
					BLOOM's embedding LayerNorm, their gradients */
	int64_t head, head_stat;     /* after them: the final norm, its gradient, the
					last block's output gradient, the lm_head's f
					copy; the loss's statistics */
};

/* The counts of config cfg on one of `tp` tensor ranks; `frozen`: the
 * base is frozen (LoRA), so the embedding side needs no gradients. */
void model_act_count(const struct model_config *cfg, int tp, bool frozen,
		     struct model_act_count *out);

/* Parameters outside the blocks that are neither embedding nor lm_head:
 * the norms (BLOOM: the embedding LayerNorm and ln_f; Llama-style: the
 * final RMSNorm). For planning which rank holds what. */
int64_t model_config_outer_norm_params(const struct model_config *cfg);

#endif
