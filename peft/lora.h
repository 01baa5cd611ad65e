/* lora.h: a LoRA adapter on one linear layer, and its forward: the layer
 * output y = x W^T + b gains scale * (dropout(x) A^T) B^T, with A (r, in)
 * and B (out, r) trainable and W frozen. Models call lora_apply after each
 * adaptable linear (nn/bloom.c does for its four). */
#ifndef HUG_PEFT_LORA_H
#define HUG_PEFT_LORA_H

#include <stdbool.h>

#include "../autograd/autograd.h"

struct lora_adapter {
	struct tensor *a;   /* lora_A.weight (r, in) */
	struct tensor *b;   /* lora_B.weight (out, r) */
	double scale;       /* alpha / r, or alpha / sqrt(r) with rslora */
	double dropout;     /* on the adapter's input */
	bool merged;        /* B A is folded into W: the adapter adds nothing */
};

/* y + scale * dropout(x) A^T B^T for x (..., in) and y (..., out); y itself
 * when l is NULL or merged. A and B in another dtype than x (f32 adapters
 * of a bf16 forward) are cast on the tape, so their gradients stay in
 * their own dtype. NULL on error (ctx->err). */
struct tensor *lora_apply(struct ag_ctx *ctx, struct tensor *x, struct tensor *y,
			  const struct lora_adapter *l);

#endif
