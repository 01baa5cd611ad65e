/* test_bloom_model.c: the BLOOM model without Hugging Face: parameter
 * names and counts, initialisation, and a finite-difference check (f64) of
 * the gradient of every parameter through the whole network, with both
 * residual settings, padding, and dropout active. */
#include <string.h>

#include "../nn/bloom.h"
#include "gradcheck.h"
#include "harness.h"
#include "../base/alloc.h"

struct tiny {
	struct bloom_model m;
	struct arena scratch;
	struct tensor *ids, *mask, *labels;
};

static void tiny_init(struct tiny *t, bool post_ln, double dropout)
{
	struct bloom_config c = bloom_config_make(11, 6, 2, 3); /* D = 2 */
	c.apply_residual_connection_post_layernorm = post_ln;
	c.hidden_dropout = dropout;
	c.attention_dropout = dropout;
	bloom_model_init(&t->m, &c, DT_F64, true);
	for (int i = 0; i < t->m.table.n; i++)
		gradcheck_fill_uniform(t->m.table.items[i].t, 500 + (uint64_t)i, -0.8, 0.8);
	arena_init(&t->scratch, "inputs", 0, NULL);
	const int32_t ids[10] = { 1, 4, 9, 10, 0, 3, 3, 7, 2, 2 };
	const int32_t mask[10] = { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 };
	const int32_t labels[10] = { 1, 4, 9, 10, 0, 3, 3, 7, -100, -100 };
	t->ids = tensor_new(&t->scratch, DT_I32, TENSOR_SHAPE(2, 5));
	t->mask = tensor_new(&t->scratch, DT_I32, TENSOR_SHAPE(2, 5));
	t->labels = tensor_new(&t->scratch, DT_I32, TENSOR_SHAPE(2, 5));
	memcpy(t->ids->data, ids, sizeof(ids));
	memcpy(t->mask->data, mask, sizeof(mask));
	memcpy(t->labels->data, labels, sizeof(labels));
}

static void tiny_free(struct tiny *t)
{
	bloom_model_free(&t->m);
	arena_free(&t->scratch);
}

/* The inputs are the model's own parameters, perturbed in place. */
static struct tensor *build_loss(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	(void)in;
	struct tiny *t = user;
	ctx->seed = 4242;
	struct tensor *logits = bloom_forward(ctx, &t->m, t->ids, t->mask);
	return bloom_lm_loss(ctx, logits, t->labels);
}

static void check_whole_model(bool post_ln, double dropout)
{
	struct tiny t;
	tiny_init(&t, post_ln, dropout);
	int n = t.m.table.n;
	struct tensor **in = hug_malloc((size_t)n * sizeof(*in));
	for (int i = 0; i < n; i++)
		in[i] = t.m.table.items[i].t;
	struct gradcheck_opts opts = { .training = dropout > 0 };
	char name[96];
	snprintf(name, sizeof(name), "bloom post_ln=%d dropout=%g", post_ln, dropout);
	CHECK_GRAD(name, build_loss, in, n, &t, &opts);
	hug_free(in);
	tiny_free(&t);
}

TEST(bloom_gradcheck_every_parameter_pre_ln)
{
	check_whole_model(false, 0.0);
}

TEST(bloom_gradcheck_every_parameter_post_ln)
{
	check_whole_model(true, 0.0);
}

TEST(bloom_gradcheck_every_parameter_with_dropout)
{
	check_whole_model(false, 0.2);
}

TEST(bloom_parameter_names_and_count)
{
	struct bloom_config c = bloom_config_make(50, 16, 3, 4);
	struct bloom_model m;
	bloom_model_init(&m, &c, DT_F32, false);
	CHECK(m.table.n == 4 + 3 * 12 + 1);
	CHECK(param_table_numel(&m.table) == bloom_param_count(&c));
	CHECK(param_table_find(&m.table, "transformer.h.2.mlp.dense_h_to_4h.weight")->t ==
	      m.layers[2].fc1_w);
	CHECK(param_table_find(&m.table, "transformer.h.2.self_attention.query_key_value.bias")->t ==
	      m.layers[2].qkv_b);
	CHECK(param_table_find(&m.table, "transformer.word_embeddings.weight")->t == m.wte);
	CHECK(param_table_find(&m.table, "lm_head.weight") == NULL);
	CHECK(m.wte->grad == NULL);
	/* no decay on biases and norms, decay on matrices and embeddings */
	CHECK(param_table_find(&m.table, "transformer.ln_f.weight")->no_decay);
	CHECK(param_table_find(&m.table, "transformer.h.0.self_attention.dense.bias")->no_decay);
	CHECK(!param_table_find(&m.table, "transformer.h.0.self_attention.dense.weight")->no_decay);
	CHECK(!param_table_find(&m.table, "transformer.word_embeddings.weight")->no_decay);
	/* every parameter in one block */
	CHECK(m.params.n_chunk_allocs == 1);
	bloom_model_free(&m);
}

TEST(bloom_init_weights_statistics)
{
	struct bloom_config c = bloom_config_make(300, 64, 2, 4);
	struct bloom_model m;
	bloom_model_init(&m, &c, DT_F32, false);
	bloom_model_init_weights(&m, 7);
	int64_t n = tensor_numel(m.wte);
	const float *w = m.wte->data;
	double s = 0, s2 = 0;
	for (int64_t i = 0; i < n; i++) {
		s += w[i];
		s2 += (double)w[i] * w[i];
	}
	double mean = s / (double)n, sd = sqrt(s2 / (double)n - mean * mean);
	CHECK(fabs(mean) < 0.001);
	CHECK_NEAR(sd, 0.02, 0.0005);
	CHECK(((const float *)m.lnf_w->data)[5] == 1.0f);
	CHECK(((const float *)m.layers[1].fc1_b->data)[7] == 0.0f);
	/* reproducible */
	float first = w[123];
	bloom_model_init_weights(&m, 7);
	CHECK(w[123] == first);
	bloom_model_free(&m);
}

TEST(bloom_forward_rejects_bad_inputs)
{
	struct tiny t;
	tiny_init(&t, false, 0.0);
	struct arena step;
	struct ag_ctx ctx;
	arena_init(&step, "step", 0, NULL);
	ag_ctx_init(&ctx, &step);
	((int32_t *)t.ids->data)[3] = 11; /* vocab is 11 */
	CHECK(bloom_forward(&ctx, &t.m, t.ids, t.mask) == NULL);
	CHECK(strstr(ctx.err.msg, "embedding") && strstr(ctx.err.msg, "11"));
	ag_ctx_reset(&ctx);
	struct tensor *flat = tensor_new(&step, DT_I32, TENSOR_SHAPE(10));
	CHECK(bloom_forward(&ctx, &t.m, flat, NULL) == NULL);
	CHECK(strstr(ctx.err.msg, "bloom") && strstr(ctx.err.msg, "[10] i32"));
	arena_free(&step);
	tiny_free(&t);
}
