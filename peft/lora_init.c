/* lora_init.c: PEFT's initialisation of LoRA adapters from a counter-based
 * stream: A kaiming-uniform (a = sqrt(5)), B zero. */
#include <math.h>

#include "../autograd/backend.h"
#include "../autograd/rng.h"
#include "lora_model.h"

/* Salt that keeps the adapters' streams apart from the base model's. */
#define LORA_STREAM 0x4c6f5241ull /* "LoRA" */

/* Uniform in [-1, 1) with 53 bits. */
static double symmetric(uint64_t seed, uint64_t i)
{
	return (double)(rng_u64(seed, i) >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* kaiming_uniform_(a, a=sqrt(5)): gain sqrt(2 / (1 + 5)), std gain /
 * sqrt(fan_in), bound sqrt(3) std = 1 / sqrt(fan_in), fan_in = A's columns.
 * A on a device is filled on the host and copied. */
static void init_a(struct tensor *a, uint64_t seed)
{
	if (a->device != DEV_CPU) {
		struct arena host;
		arena_init(&host, "lora-init", 0, NULL);
		struct tensor *h = tensor_new_like(&host, a);
		init_a(h, seed);
		tensor_transfer(a, h);
		arena_free(&host);
		return;
	}
	double bound = 1.0 / sqrt((double)a->shape[1]);
	int64_t n = tensor_numel(a);
	if (a->dtype == DT_F32) {
		float *d = a->data;
		for (int64_t i = 0; i < n; i++)
			d[i] = (float)(bound * symmetric(seed, (uint64_t)i));
	} else {
		double *d = a->data;
		for (int64_t i = 0; i < n; i++)
			d[i] = bound * symmetric(seed, (uint64_t)i);
	}
}

void lora_model_init_weights(struct lora_model *lm, uint64_t seed)
{
	uint64_t base = rng_u64(seed, LORA_STREAM);
	for (int i = 0; i < lm->n; i++) {
		init_a(lm->sites[i].ad.a, rng_u64(base, (uint64_t)i));
		struct tensor *b = lm->sites[i].ad.b;
		if (b->device == DEV_CPU)
			tensor_fill(b, 0.0);
		else
			ag_backend_get(b->device)->fill(b, 0.0);
		lm->sites[i].ad.merged = false;
	}
}
