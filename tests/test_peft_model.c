/* test_peft_model.c: LoRA on a BLOOM model without fixtures: which layers
 * a config selects (names, patterns, paths, regex, layers), PEFT's
 * initialisation (A uniform within 1/sqrt(in), B zero, so a fresh adapter
 * leaves the logits bit for bit), dropout on the adapter input, and the
 * parameter and memory counts (bloom-560m: PEFT's well-known 786,432
 * trainable parameters for r = 8 on query_key_value). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../autograd/rng.h"
#include "../base/alloc.h"
#include "../peft/lora_model.h"
#include "bloom_util.h"
#include "harness.h"

/* A small BLOOM config of n_layer blocks. */
static struct model_config blocks(int n_layer)
{
	struct model_config mc;
	struct bloom_config bc = bloom_config_make(50, 64, n_layer, 4);
	bloom_model_config(&mc, &bc);
	return mc;
}

/* Number of sites cfg selects on n_layer blocks. */
static int count_sites(const struct lora_config *c, int n_layer)
{
	int n = 0;
	struct model_config mc = blocks(n_layer);
	struct model_linear lin;
	for (int l = 0; l < n_layer; l++)
		for (int k = 0; k < BLOOM_N_LINEAR; k++) {
			model_config_linear(&mc, l, k, &lin);
			n += lora_config_selects(c, &lin, NULL);
		}
	return n;
}

static int sites_for(const char *const *targets, int n, int n_layer)
{
	struct lora_config c;
	lora_config_init(&c);
	lora_config_set_targets(&c, targets, n);
	lora_config_resolve_targets(&c, &bloom_family); /* none given: BLOOM's default */
	int k = count_sites(&c, n_layer);
	lora_config_free(&c);
	return k;
}

TEST(peft_targets_by_name_pattern_path_and_regex)
{
	CHECK(sites_for(NULL, 0, 3) == 3); /* query_key_value, PEFT's default */
	CHECK(sites_for((const char *[]){ "dense*" }, 1, 3) == 9);
	CHECK(sites_for((const char *[]){ "dense" }, 1, 3) == 3);
	CHECK(sites_for((const char *[]){ "self_attention.dense" }, 1, 3) == 3);
	CHECK(sites_for((const char *[]){ "h.1.mlp.dense_4h_to_h" }, 1, 3) == 1);
	CHECK(sites_for((const char *[]){ "transformer.h.2.self_attention.query_key_value" },
			1, 3) == 1);
	CHECK(sites_for((const char *[]){ "all-linear" }, 1, 3) == 12);
	CHECK(sites_for((const char *[]){ "query_key_value", "dense_h_to_4h" }, 2, 3) == 6);
	CHECK(sites_for((const char *[]){ "key_value" }, 1, 3) == 0); /* not a suffix at a dot */

	struct lora_config c;
	struct hug_error err = { 0 };
	lora_config_init(&c);
	lora_config_set_regex(&c, ".*\\.h\\.(0|2)\\.mlp\\..*");
	CHECK(count_sites(&c, 3) == 4);
	struct model_config three = blocks(3), two = blocks(2);
	struct model_linear qkv2;
	model_config_linear(&three, 2, BLOOM_QKV, &qkv2);
	CHECK(lora_config_check_targets(&c, &three, "x: ", &err) == 0);
	lora_config_set_targets(&c, (const char *[]){ "query_key_value" }, 1);
	c.layers = hug_malloc(sizeof(int));
	c.layers[0] = 2;
	c.n_layers = 1;
	CHECK(count_sites(&c, 3) == 1);
	CHECK(lora_config_selects(&c, &qkv2, NULL));
	CHECK(lora_config_check_targets(&c, &two, "x: ", &err) == -1);
	CHECK(strstr(err.msg, "x: layers_to_transform[0]: layer 2 does not exist") != NULL);
	lora_config_free(&c);
}

TEST(peft_unknown_target_is_an_error_naming_it)
{
	struct lora_config c;
	struct hug_error err = { 0 };
	lora_config_init(&c);
	lora_config_set_targets(&c, (const char *[]){ "query_key_value", "qkv" }, 2);
	struct model_config two = blocks(2);
	CHECK(lora_config_check_targets(&c, &two, "run.json: peft.", &err) == -1);
	CHECK(strstr(err.msg, "run.json: peft.target_modules[1]: \"qkv\" matches no linear "
			      "layer of BLOOM") != NULL);
	CHECK(strstr(err.msg, "query_key_value, dense, dense_h_to_4h, dense_4h_to_h") != NULL);
	hug_error_clear(&err);
	lora_config_set_regex(&c, "(unclosed");
	CHECK(lora_config_validate(&c, "a.json: ", &err) == -1);
	CHECK(strstr(err.msg, "a.json: target_modules: \"(unclosed\" is not a regular "
			      "expression") != NULL);
	/* stacked repetition (fuzz finding: glibc's regcomp took gigabytes) is
	 * refused; ordinary patterns, brackets and escapes still compile */
	hug_error_clear(&err);
	char big[200];
	snprintf(big, sizeof(big), "all-linea%0120dr", 0);
	memset(big + 9, '+', 120);
	lora_config_set_regex(&c, big);
	CHECK(lora_config_validate(&c, "a.json: ", &err) == -1);
	CHECK(strstr(err.msg, "a.json: target_modules:") != NULL);
	hug_error_clear(&err);
	lora_config_set_regex(&c, ".*(query_key_value|dense)[+*]?\\.?x{0,2}");
	CHECK(lora_config_validate(&c, "a.json: ", &err) == 0);
	hug_error_clear(&err);
	lora_config_set_targets(&c, NULL, 0);
	c.r = 0;
	CHECK(lora_config_validate(&c, "a.json: ", &err) == -1);
	CHECK(strstr(err.msg, "a.json: r: expected an integer > 0, got 0") != NULL);
	lora_config_free(&c);
}

/* A tiny random BLOOM in f32 (hidden 64, 2 layers, 4 heads). */
static void tiny_model(struct bloom_model *m)
{
	struct bloom_config cfg = bloom_config_make(50, 64, 2, 4);
	bloom_model_init(m, &cfg, DT_F32, false);
	bloom_model_init_weights(m, 7);
}

/* tiny_model in *m with the adapters of c on it (lora_model_init, then
 * lora_model_init_weights from seed). REQUIREs that it works. */
#define TINY_LORA(m, lm, c, trainable, seed)                                                       \
	do {                                                                                       \
		struct hug_error err_ = { 0 };                                                     \
		tiny_model(m);                                                                     \
		if (lora_model_init(lm, BLOOM_M(m), c, trainable, "", &err_)) {                    \
			test_fail_at(__FILE__, __LINE__, "lora_model_init: %s", err_.msg);         \
			return;                                                                    \
		}                                                                                  \
		lora_model_init_weights(lm, seed);                                                 \
	} while (0)

static struct tensor *forward(struct ag_ctx *ctx, const struct bloom_model *m,
			      struct tensor *ids)
{
	ag_ctx_reset(ctx);
	return bloom_forward(ctx, m, ids, NULL);
}

TEST(peft_init_is_kaiming_uniform_and_b_zero)
{
	struct bloom_model m;
	struct lora_model lm;
	struct lora_config c;
	lora_config_init(&c);
	c.r = 16;
	lora_config_set_targets(&c, (const char *[]){ "all-linear" }, 1);
	TINY_LORA(&m, &lm, &c, true, 99);
	CHECK(lm.n == 8 && lm.table.n == 16);
	double worst_mean = 0, worst_var = 0;
	bool within = true, b_zero = true;
	for (int i = 0; i < lm.n; i++) {
		const struct tensor *a = lm.sites[i].ad.a, *b = lm.sites[i].ad.b;
		double bound = 1.0 / sqrt((double)a->shape[1]), s = 0, ss = 0;
		int64_t n = tensor_numel(a);
		for (int64_t k = 0; k < n; k++) {
			double v = ((float *)a->data)[k];
			within = within && fabs(v) <= bound;
			s += v;
			ss += v * v;
		}
		double mean = s / (double)n / bound, var = ss / (double)n / (bound * bound);
		worst_mean = fmax(worst_mean, fabs(mean));
		worst_var = fmax(worst_var, fabs(var - 1.0 / 3.0));
		for (int64_t k = 0; k < tensor_numel(b); k++)
			b_zero = b_zero && ((float *)b->data)[k] == 0.0f;
	}
	printf("(|mean|/bound <= %.3f, |var/bound^2 - 1/3| <= %.3f) ", worst_mean, worst_var);
	CHECK(within && b_zero);
	CHECK(worst_mean < 0.05);   /* 1024+ samples per tensor: sd of the mean ~0.02 */
	CHECK(worst_var < 0.03);

	/* the same seed gives the same values; B = 0 leaves the logits exactly */
	float first = ((float *)lm.sites[3].ad.a->data)[5];
	lora_model_init_weights(&lm, 99);
	CHECK(((float *)lm.sites[3].ad.a->data)[5] == first);
	lora_model_init_weights(&lm, 100);
	CHECK(((float *)lm.sites[3].ad.a->data)[5] != first);

	struct arena mem, step;
	struct ag_ctx ctx;
	arena_init(&mem, "mem", 0, NULL);
	arena_init(&step, "step", 0, NULL);
	ag_ctx_init(&ctx, &step);
	struct tensor *ids = tensor_new(&mem, DT_I32, TENSOR_SHAPE(2, 7));
	for (int i = 0; i < 14; i++)
		((int32_t *)ids->data)[i] = (i * 7 + 3) % 50;
	struct tensor *with = forward(&ctx, &m, ids);
	REQUIRE(with);
	size_t bytes = tensor_nbytes(with);
	void *copy = hug_malloc(bytes);
	memcpy(copy, with->data, bytes);
	lora_model_free(&lm);
	struct tensor *without = forward(&ctx, &m, ids);
	CHECK(without && memcmp(copy, without->data, bytes) == 0);
	hug_free(copy);
	arena_free(&mem);
	arena_free(&step);
	lora_config_free(&c);
	bloom_model_free(&m);
}

TEST(peft_dropout_on_adapter_input_only_in_training)
{
	struct bloom_model m;
	struct lora_model lm;
	struct lora_config c;
	lora_config_init(&c);
	c.dropout = 0.5;
	TINY_LORA(&m, &lm, &c, false, 1);
	for (int i = 0; i < lm.n; i++) /* a B that is not zero */
		for (int64_t k = 0; k < tensor_numel(lm.sites[i].ad.b); k++)
			((float *)lm.sites[i].ad.b->data)[k] = 0.05f * (float)((k % 7) - 3);
	struct arena mem, step;
	struct ag_ctx ctx;
	arena_init(&mem, "mem", 0, NULL);
	arena_init(&step, "step", 0, NULL);
	ag_ctx_init(&ctx, &step);
	struct tensor *ids = tensor_new(&mem, DT_I32, TENSOR_SHAPE(1, 6));
	for (int i = 0; i < 6; i++)
		((int32_t *)ids->data)[i] = i + 4;
	double eval[6 * 50], train1[6 * 50], train2[6 * 50];
	ctx.training = false;
	tensor_read_f64(forward(&ctx, &m, ids), eval);
	ctx.training = true;
	ctx.rng_offset = 0;
	tensor_read_f64(forward(&ctx, &m, ids), train1);
	CHECK(ctx.rng_offset > 0); /* the base has no dropout: only the adapters drew */
	ctx.rng_offset = 0;
	tensor_read_f64(forward(&ctx, &m, ids), train2);
	double d_eval = 0, d_repeat = 0;
	for (int i = 0; i < 300; i++) {
		d_eval = fmax(d_eval, fabs(train1[i] - eval[i]));
		d_repeat = fmax(d_repeat, fabs(train1[i] - train2[i]));
	}
	CHECK(d_eval > 1e-4);      /* dropout changed the adapter's input */
	CHECK(d_repeat == 0.0);    /* the same seed and offset, the same mask */
	lora_model_free(&lm);
	arena_free(&mem);
	arena_free(&step);
	lora_config_free(&c);
	bloom_model_free(&m);
}

static double mib(int64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

TEST(peft_bloom_560m_counts_and_memory)
{
	struct bloom_config b560;
	struct model_config bc;
	struct lora_config c;
	struct lora_memory lora, full;
	REQUIRE(bloom_config_preset("bloom-560m", &b560) == 0);
	bloom_model_config(&bc, &b560);
	lora_config_init(&c); /* r 8 on query_key_value, PEFT's defaults */
	int64_t a = lora_count_params(&c, &bc);
	/* PEFT prints "trainable params: 786,432 || all params: 560,001,024" */
	CHECK(a == 786432);
	CHECK(bloom_param_count(&b560) + a == 560001024);
	lora_memory_estimate(&c, &bc, 4, 2, &lora, &full);
	int64_t l = lora.params + lora.grads + lora.optim, f = full.params + full.grads + full.optim;
	printf("\n    bloom-560m, f32 + AdamW: full fine-tuning %.1f MiB (params %.1f + grads "
	       "%.1f + optimizer %.1f); LoRA r=8 on query_key_value %.1f MiB (params %.1f + "
	       "grads %.2f + optimizer %.2f): saves %.1f MiB (%.1f%%)",
	       mib(f), mib(full.params), mib(full.grads), mib(full.optim), mib(l),
	       mib(lora.params), mib(lora.grads), mib(lora.optim), mib(f - l),
	       100.0 * (double)(f - l) / (double)f);
	lora_config_set_targets(&c, (const char *[]){ "all-linear" }, 1);
	c.r = 16;
	lora_memory_estimate(&c, &bc, 4, 2, &lora, &full);
	l = lora.params + lora.grads + lora.optim;
	printf("\n    LoRA r=16 on all-linear: %lld adapter params, %.1f MiB: saves %.1f%%\n    ",
	       (long long)lora_count_params(&c, &bc), mib(l), 100.0 * (double)(f - l) / (double)f);
	CHECK(l < f / 3);
	lora_config_free(&c);
}
