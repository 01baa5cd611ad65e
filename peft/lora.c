/* lora.c: the LoRA forward on the autograd ops. */
#include "lora.h"

struct tensor *lora_apply(struct ag_ctx *ctx, struct tensor *x, struct tensor *y,
			  const struct lora_adapter *l)
{
	if (!l || l->merged)
		return y;
	struct tensor *h = ag_dropout(ctx, x, l->dropout);
	h = ag_linear(ctx, h, l->a, NULL);          /* (..., r) */
	h = ag_linear(ctx, h, l->b, NULL);          /* (..., out) */
	return ag_add(ctx, y, ag_scale(ctx, h, l->scale));
}
