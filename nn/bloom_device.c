/* bloom_device.c: moving a BLOOM model between devices, and the cast view
 * for mixed precision. */
#include "bloom_device.h"

#include <string.h>

#include "../base/panic.h"

void bloom_model_to_device(struct bloom_model *dst, const struct bloom_model *src,
			   const struct arena_allocator *allocator, bool trainable)
{
	bloom_model_init_on(dst, &src->cfg, src->dtype, trainable, &src->tp, allocator);
	bloom_model_copy_weights(dst, src);
}

void bloom_model_copy_weights(struct bloom_model *dst, const struct bloom_model *src)
{
	HUG_ASSERT(dst->table.n == src->table.n);
	for (int i = 0; i < src->table.n; i++) {
		const struct param *s = &src->table.items[i];
		struct param *d = &dst->table.items[i];
		HUG_ASSERT(strcmp(s->name, d->name) == 0);
		tensor_transfer(d->t, s->t);
	}
}

bool bloom_model_cast(struct ag_ctx *ctx, const struct bloom_model *m, enum dtype dt,
		      struct bloom_model *out)
{
	HUG_ASSERT(!m->cast_view);
	*out = *m;
	out->dtype = dt;
	out->cast_view = true;
	/* the embedding (also the lm_head) and its LayerNorm are used first;
	 * the blocks and ln_f are cast where the forward reaches them */
	out->wte = ag_cast(ctx, m->wte, dt);
	out->emb_ln_w = ag_cast(ctx, m->emb_ln_w, dt);
	out->emb_ln_b = ag_cast(ctx, m->emb_ln_b, dt);
	out->slopes = ag_cast(ctx, m->slopes, dt);
	return !ag_failed(ctx);
}
