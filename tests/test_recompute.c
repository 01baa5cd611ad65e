/* test_recompute.c: activation recomputation (autograd/checkpoint.h) on
 * the CPU: every parameter gradient and the loss of two training steps
 * with dropout are the same bits under "none", "block" and "selective"
 * for BLOOM (pre- and post-LN residuals) and the Llama-style families
 * (grouped key/value heads, QK-norm, a sliding window), also with LoRA
 * adapters (dropout on their input) on a frozen base; recomputation keeps
 * less memory; steps after the first allocate nothing; a region that
 * computes something else the second time is an error. The op itself is
 * gradient-checked in f64 and compared on CUDA through its cases in
 * tests/op_cases.c; tensor parallelism in tests/test_mpi.c; the device in
 * tests/test_cuda_recompute.c. */
#include <stdio.h>
#include <string.h>

#include "../autograd/checkpoint.h"
#include "../base/alloc.h"
#include "../base/panic.h"
#include "../peft/lora_model.h"
#include "ag_env.h"
#include "harness.h"
#include "recompute_util.h"

static const enum ag_recompute modes[] = { AG_RECOMPUTE_BLOCK, AG_RECOMPUTE_SELECTIVE };
static const char *const mode_names[] = { "none", "block", "selective" };

/* Runs m under every mode and checks each against "none" bit for bit. */
static void check_modes(const char *what, const struct model *m, const struct param_table *pt)
{
	struct recompute_result ref, got;
	REQUIRE(recompute_run(m, pt, AG_RECOMPUTE_NONE, 2, &ref) == 0);
	CHECK(ref.bytes > 0 && ref.allocs_late == 0);
	for (size_t k = 0; k < sizeof(modes) / sizeof(modes[0]); k++) {
		REQUIRE(recompute_run(m, pt, modes[k], 2, &got) == 0);
		const char *name;
		int d = recompute_first_diff(pt, &ref, &got, &name);
		if (d)
			test_fail_at(__FILE__, __LINE__, "%s, %s: the gradient of %s differs from "
				     "\"none\"", what, mode_names[modes[k]], name);
		if (memcmp(&ref.loss, &got.loss, sizeof(double)))
			test_fail_at(__FILE__, __LINE__, "%s, %s: loss %.17g, \"none\" %.17g", what,
				     mode_names[modes[k]], got.loss, ref.loss);
		if (got.allocs_late)
			test_fail_at(__FILE__, __LINE__, "%s, %s: the second step allocated %llu "
				     "times", what, mode_names[modes[k]],
				     (unsigned long long)got.allocs_late);
		CHECK(got.scratch_peak > 0);
		hug_free(got.grads);
	}
	hug_free(ref.grads);
}

/* A model of `family` with the given sizes and settings (config.json keys,
 * a NULL-terminated list of key, value pairs), initialised. */
static void make(struct model *m, const char *family, struct model_sizes s,
		 const char *const *keys, const double *vals, bool trainable)
{
	struct model_config c;
	model_config_make(&c, model_family_find(family), &s);
	for (int i = 0; keys && keys[i]; i++)
		HUG_ASSERT(model_config_set(&c, keys[i], vals[i]) == 0);
	struct hug_error err = { 0 };
	if (model_config_validate(&c, family, &err))
		hug_panic("%s", err.msg);
	model_init(m, &c, DT_F32, trainable, NULL, NULL);
	model_init_weights(m, 3);
}

TEST(recompute_bloom_gradients_bit_identical)
{
	for (int post = 0; post < 2; post++) {
		struct model m;
		make(&m, "bloom", (struct model_sizes){ 80, 24, 3, 4 },
		     (const char *[]){ "hidden_dropout", "attention_dropout",
				       "apply_residual_connection_post_layernorm", NULL },
		     (const double[]){ 0.1, 0.15, post }, true);
		check_modes(post ? "bloom post-LN" : "bloom", &m, model_params(&m));
		model_free(&m);
	}
}

TEST(recompute_llama_families_gradients_bit_identical)
{
	/* grouped key/value heads; Qwen3's QK-norm and q/k/v biases of Qwen2;
	 * Mistral's window of 4 keys (< T = 9) */
	const char *fam[] = { "llama", "qwen2", "qwen3", "mistral" };
	for (int f = 0; f < 4; f++) {
		struct model m;
		bool mistral = !strcmp(fam[f], "mistral");
		make(&m, fam[f], (struct model_sizes){ 80, 24, 3, 4 },
		     (const char *[]){ "attention_dropout", "num_key_value_heads",
				       "intermediate_size", mistral ? "sliding_window" : NULL,
				       NULL },
		     (const double[]){ 0.1, 2, 40, 4 }, true);
		check_modes(fam[f], &m, model_params(&m));
		model_free(&m);
	}
}

/* LoRA on every linear layer with dropout on the adapter input, over a
 * frozen base; B made nonzero so both A and B get gradients. */
static void check_lora(const char *family)
{
	struct model m;
	make(&m, family, (struct model_sizes){ 80, 24, 2, 4 },
	     (const char *[]){ "attention_dropout", NULL }, (const double[]){ 0.1 }, false);
	struct lora_config lc;
	lora_config_init(&lc);
	lc.r = 4;
	lc.dropout = 0.2;
	lora_config_set_targets(&lc, (const char *[]){ "all-linear" }, 1);
	struct lora_model lm;
	struct hug_error err = { 0 };
	REQUIRE(lora_model_init(&lm, &m, &lc, true, "test", &err) == 0);
	lora_model_init_weights(&lm, 5);
	for (int i = 0; i < lm.table.n; i++) {
		struct tensor *t = lm.table.items[i].t;
		if (!strstr(lm.table.items[i].name, "lora_B"))
			continue;
		float *v = t->data;
		for (int64_t j = 0; j < tensor_numel(t); j++)
			v[j] = 0.01f * (float)((j * 7 + i) % 11 - 5);
	}
	char what[64];
	snprintf(what, sizeof(what), "%s + LoRA", family);
	check_modes(what, &m, &lm.table);
	lora_model_free(&lm);
	lora_config_free(&lc);
	model_free(&m);
}

TEST(recompute_lora_gradients_bit_identical)
{
	check_lora("bloom");
	check_lora("llama");
}

/* Six blocks: recomputation keeps less than "none" (the step arena's
 * high-water mark plus the scratch of one region). */
TEST(recompute_keeps_less_memory)
{
	const char *fam[] = { "bloom", "llama" };
	for (int f = 0; f < 2; f++) {
		struct model m;
		make(&m, fam[f], (struct model_sizes){ 80, 64, 6, 4 }, NULL, NULL, true);
		struct recompute_result r[3];
		for (int k = 0; k < 3; k++) {
			REQUIRE(recompute_run(&m, model_params(&m), (enum ag_recompute)k, 1, &r[k]) == 0);
			hug_free(r[k].grads);
		}
		size_t none = r[0].step_peak, block = r[1].step_peak + r[1].scratch_peak,
		       sel = r[2].step_peak + r[2].scratch_peak;
		printf("\n    %s: step memory none %zu, block %zu, selective %zu bytes", fam[f],
		       none, block, sel);
		CHECK(r[0].scratch_peak == 0);
		CHECK(block < none / 2);
		CHECK(sel < none);
		model_free(&m);
	}
	printf("\n");
}

/* ---- the engine's contract ---- */

static int calls;

/* x * w the first time, x * w * w after: not a region. */
static struct tensor *unstable(struct ag_ctx *ctx, const void *state, struct tensor *const *in)
{
	(void)state;
	struct tensor *y = ag_mul(ctx, in[0], in[1]);
	return calls++ ? ag_view(ctx, y, TENSOR_SHAPE(-1)) : y;
}

static struct tensor *mul_body(struct ag_ctx *ctx, const void *state, struct tensor *const *in)
{
	const double *s = state;
	return ag_scale(ctx, ag_mul(ctx, in[0], in[1]), *s);
}

TEST(recompute_region_contract)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *x = tensor_new(&e.model, DT_F32, TENSOR_SHAPE(2, 3));
	struct tensor *w = tensor_new(&e.model, DT_F32, TENSOR_SHAPE(2, 3));
	tensor_fill(x, 0.5);
	tensor_fill(w, 3.0);
	tensor_set_requires_grad(w, &e.model);

	/* the state is copied: the caller's may change after the call */
	double s = 2.0;
	struct tensor *y = ag_checkpoint(&e.ctx, mul_body, &s, sizeof(s), 2,
					 (struct tensor *[]){ x, w });
	s = 100.0;
	REQUIRE(y && y->node && y->node->op == AG_OP_CHECKPOINT && e.ctx.n_nodes == 1);
	CHECK(((float *)y->data)[4] == 3.0f);
	REQUIRE(ag_backward(&e.ctx, ag_sum(&e.ctx, y, AG_DIM_ALL)) == 0);
	CHECK(((float *)w->grad->data)[5] == 1.0f); /* 2 * x */
	CHECK(!x->grad);

	/* nothing needs a gradient: no node; under no_grad: the body itself */
	ag_ctx_reset(&e.ctx);
	y = ag_checkpoint(&e.ctx, mul_body, &s, sizeof(s), 2, (struct tensor *[]){ x, x });
	CHECK(y && !y->node && e.ctx.n_nodes == 0 && ((float *)y->data)[0] == 25.0f);
	bool g = ag_set_grad_enabled(&e.ctx, false);
	y = ag_checkpoint(&e.ctx, mul_body, &s, sizeof(s), 2, (struct tensor *[]){ x, w });
	CHECK(y && !y->node && e.ctx.n_nodes == 0);
	ag_set_grad_enabled(&e.ctx, g);

	/* too many inputs; a body that changes between runs */
	ag_ctx_reset(&e.ctx);
	struct tensor *many[AG_MAX_INPUTS + 1] = { 0 };
	CHECK(!ag_checkpoint(&e.ctx, mul_body, &s, sizeof(s), AG_MAX_INPUTS + 1, many));
	char want[64];
	snprintf(want, sizeof(want), "checkpoint: %d inputs, expected 0 to %d", AG_MAX_INPUTS + 1,
		 AG_MAX_INPUTS);
	CHECK(strstr(e.ctx.err.msg, want));
	ag_ctx_reset(&e.ctx);
	calls = 0;
	y = ag_checkpoint(&e.ctx, unstable, NULL, 0, 2, (struct tensor *[]){ x, w });
	REQUIRE(y);
	CHECK(ag_backward(&e.ctx, ag_sum(&e.ctx, y, AG_DIM_ALL)) == -1);
	CHECK(strstr(e.ctx.err.msg, "recomputed region differs from its forward"));
	ag_env_free(&e);
}
