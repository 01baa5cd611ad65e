/* lora_merge.c: folding adapters into the base weights and back:
 * W (out, in) += or -= scale * B (out, r) A (r, in). */
#include "../base/alloc.h"
#include "../base/panic.h"
#include "lora_model.h"

/* W += sign * scale * B A, the product in double. */
static void apply_delta(struct tensor *w, const struct lora_adapter *ad, double sign)
{
	int64_t out = w->shape[0], in = w->shape[1], r = ad->a->shape[0];
	HUG_ASSERT(tensor_is_contiguous(w) && tensor_is_contiguous(ad->a) &&
		   tensor_is_contiguous(ad->b));
	double *a = hug_malloc((size_t)(r * in) * sizeof(double));
	double *b = hug_malloc((size_t)(out * r) * sizeof(double));
	tensor_read_f64(ad->a, a);
	tensor_read_f64(ad->b, b);
	double s = sign * ad->scale;
	bool f32 = w->dtype == DT_F32;
	HUG_ASSERT(f32 || w->dtype == DT_F64);
#pragma omp parallel for if (out * in * r >= 65536)
	for (int64_t o = 0; o < out; o++) {
		for (int64_t i = 0; i < in; i++) {
			double d = 0;
			for (int64_t k = 0; k < r; k++)
				d += b[o * r + k] * a[k * in + i];
			if (f32)
				((float *)w->data)[o * in + i] += (float)(s * d);
			else
				((double *)w->data)[o * in + i] += s * d;
		}
	}
	hug_free(a);
	hug_free(b);
}

void lora_merge(struct lora_model *lm)
{
	for (int i = 0; i < lm->n; i++) {
		struct lora_site *s = &lm->sites[i];
		if (s->ad.merged)
			continue;
		apply_delta(s->lin.weight, &s->ad, 1.0);
		s->ad.merged = true;
	}
}

void lora_unmerge(struct lora_model *lm)
{
	for (int i = 0; i < lm->n; i++) {
		struct lora_site *s = &lm->sites[i];
		if (!s->ad.merged)
			continue;
		apply_delta(s->lin.weight, &s->ad, -1.0);
		s->ad.merged = false;
	}
}
