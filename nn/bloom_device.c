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
		      struct bloom_model *out, struct bloom_layer *layers)
{
	*out = *m;
	out->dtype = dt;
	out->layers = layers;
#define CAST(x) ag_cast(ctx, (x), dt)
	out->wte = CAST(m->wte);
	out->emb_ln_w = CAST(m->emb_ln_w);
	out->emb_ln_b = CAST(m->emb_ln_b);
	out->lnf_w = CAST(m->lnf_w);
	out->lnf_b = CAST(m->lnf_b);
	out->slopes = CAST(m->slopes);
	for (int l = 0; l < m->cfg.n_layer; l++) {
		const struct bloom_layer *s = &m->layers[l];
		struct bloom_layer *d = &layers[l];
		*d = *s; /* fields beyond the weights (LoRA adapters) as they are */
		d->ln1_w = CAST(s->ln1_w);
		d->ln1_b = CAST(s->ln1_b);
		d->qkv_w = CAST(s->qkv_w);
		d->qkv_b = CAST(s->qkv_b);
		d->proj_w = CAST(s->proj_w);
		d->proj_b = CAST(s->proj_b);
		d->ln2_w = CAST(s->ln2_w);
		d->ln2_b = CAST(s->ln2_b);
		d->fc1_w = CAST(s->fc1_w);
		d->fc1_b = CAST(s->fc1_b);
		d->fc2_w = CAST(s->fc2_w);
		d->fc2_b = CAST(s->fc2_b);
	}
#undef CAST
	return !ag_failed(ctx);
}
