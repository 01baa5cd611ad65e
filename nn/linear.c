/* linear.c: the LoRA adapter of a linear layer, on the autograd ops. */
#include "linear.h"

struct tensor *lora_apply(struct ag_ctx *ctx, struct tensor *x, struct tensor *y,
			  const struct lora_adapter *l)
{
	if (!l || l->merged)
		return y;
	struct tensor *a = l->a, *b = l->b;
	if (x && a->dtype != x->dtype) { /* mixed precision: f32 adapters, bf16 compute */
		a = ag_cast(ctx, a, x->dtype);
		b = ag_cast(ctx, b, x->dtype);
	}
	struct tensor *h = ag_dropout(ctx, x, l->dropout);
	h = ag_linear(ctx, h, a, NULL);             /* (..., r) */
	h = ag_linear(ctx, h, b, NULL);             /* (..., out) */
	return ag_add(ctx, y, ag_scale(ctx, h, l->scale));
}
