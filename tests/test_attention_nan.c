/* test_attention_nan.c: NaN propagates through the CPU attention: a query
 * row whose scores are NaN gives a NaN output row and NaN gradients (it
 * used to count as "every key masked" and give zeros), while a row masked
 * by the padding mask keeps its zero output; a NaN in one weight of a
 * BLOOM model gives a NaN loss. */
#include <math.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../io/hf_checkpoint.h"
#include "bloom_util.h"
#include "../nn/bloom.h"
#include "ag_env.h"
#include "harness.h"

enum { T = 4, D = 3 };

TEST(attention_nan_score_row_propagates)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *qkv[3];
	for (int i = 0; i < 3; i++) { /* (1, 1, T, D) */
		qkv[i] = tensor_new(&e.model, DT_F32, TENSOR_SHAPE(1, 1, T, D));
		float *x = qkv[i]->data;
		for (int e = 0; e < T * D; e++)
			x[e] = 0.1f * (float)((e * 7 + i * 3) % 11) - 0.5f;
		tensor_set_requires_grad(qkv[i], &e.model);
	}
	for (int d = 0; d < D; d++) /* query row 2: every score NaN */
		((float *)qkv[0]->data)[2 * D + d] = NAN;
	struct tensor *mask = tensor_new(&e.model, DT_I32, TENSOR_SHAPE(1, T));
	const int32_t mk[T] = { 0, 1, 1, 1 }; /* row 0: its only key is padding */
	memcpy(mask->data, mk, sizeof(mk));
	struct tensor *o = ag_attention(&e.ctx, qkv[0], qkv[1], qkv[2],
					&(struct ag_attn_desc){ .causal = true, .key_mask = mask });
	REQUIRE(o);
	const float *y = o->data; /* (1, 1, T, D) */
	for (int d = 0; d < D; d++) {
		CHECK(y[0 * D + d] == 0);        /* masked: defined zeros */
		CHECK(isfinite(y[1 * D + d]));
		CHECK(isnan(y[2 * D + d]));      /* NaN scores: NaN, not zeros */
		CHECK(isfinite(y[3 * D + d]));
	}
	REQUIRE(ag_backward(&e.ctx, ag_sum(&e.ctx, o, AG_DIM_ALL)) == 0);
	const float *dq = qkv[0]->grad->data, *dv = qkv[2]->grad->data;
	CHECK(isnan(dq[2 * D]));
	CHECK(isfinite(dq[1 * D]) && isfinite(dq[3 * D]));
	bool dv_nan = false;
	for (int e = 0; e < T * D; e++)
		dv_nan = dv_nan || isnan(dv[e]);
	CHECK(dv_nan);
	ag_env_free(&e);
}

TEST(attention_nan_weight_gives_nan_loss)
{
	struct bloom_model m;
	struct hug_error err = { 0 };
	REQUIRE(hf_bloom_load("tests/fixtures/bloom-tiny-a", DT_F32, false, &m, &err) == 0);
	struct param *p = param_table_find(&m.table, "transformer.h.0.self_attention.query_key_value.weight");
	REQUIRE(p);
	/* row 0 is head 0's first query channel: every score of head 0 NaN */
	((float *)p->t->data)[0] = NAN;
	struct arena step;
	arena_init(&step, "step", 0, NULL);
	struct ag_ctx ctx;
	ag_ctx_init(&ctx, &step);
	ag_set_grad_enabled(&ctx, false);
	struct tensor *ids = tensor_new(&step, DT_I32, TENSOR_SHAPE(1, 6));
	const int32_t tok[6] = { 1, 5, 9, 20, 3, 44 };
	memcpy(ids->data, tok, sizeof(tok));
	struct tensor *logits = bloom_forward(&ctx, &m, ids, NULL); /* (1, 6, V) */
	REQUIRE(logits);
	struct tensor *lg = ag_slice(&ctx, logits, 1, 0, 5), *tg = ag_slice(&ctx, ids, 1, 1, 5);
	struct tensor *loss = ag_cross_entropy(&ctx, lg, tg, -100);
	REQUIRE(loss);
	CHECK(isnan(tensor_item(loss)));
	arena_free(&step);
	bloom_model_free(&m);
}
