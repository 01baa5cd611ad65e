/* linear.h: the adapter hook of a linear layer. A model's linear layer
 * y = x W^T + b may carry a LoRA adapter: the output gains
 * scale * (dropout(x) A^T) B^T, with A (r, in) and B (out, r) trainable and
 * W frozen. The model's forward calls lora_apply after each adaptable
 * linear (the family lists them: model_linear.adapter is the hook); peft/
 * allocates the adapters and fills the hooks, so nn/ never needs peft/. */
#ifndef HUG_NN_LINEAR_H
#define HUG_NN_LINEAR_H

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
