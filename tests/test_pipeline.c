/* test_pipeline.c: the single-process parts of pipeline parallelism: the
 * stage split (balanced and explicit), the 1F1B order, the bubble of its
 * simulation against (P-1)/(m+P-1), and model_forward_stage: stages run
 * one after the other, the activation's gradient handed back with
 * ag_backward_from, give the whole model's logits, loss and parameter
 * gradients, for BLOOM (tied head) and Llama (untied and tied). The
 * multi-process schedule is tested in test_mpi.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../nn/model.h"
#include "../train/pipeline_schedule.h"
#include "../train/recipe.h"
#include "harness.h"

TEST(pipeline_split_balanced_and_explicit)
{
	int lo[5];
	struct hug_error err = { 0 };
	REQUIRE(pipeline_split(4, 2, NULL, 1, 0, 0, "x", lo, &err) == 0);
	CHECK(lo[0] == 0 && lo[1] == 2 && lo[2] == 4);
	/* a heavy embedding (4 blocks' worth) leaves the first stage fewer
	 * blocks: 4 + 2 | 6, where 4 + 1 | 7 and 4 + 3 | 5 have a stage of 7 */
	REQUIRE(pipeline_split(8, 2, NULL, 1, 4, 0, "x", lo, &err) == 0);
	CHECK(lo[1] == 2);
	REQUIRE(pipeline_split(6, 4, NULL, 1, 0, 0, "x", lo, &err) == 0);
	for (int s = 0; s < 4; s++)
		CHECK(lo[s + 1] - lo[s] >= 1 && lo[s + 1] - lo[s] <= 2);
	CHECK(lo[4] == 6);
	int split[3] = { 1, 2, 1 };
	REQUIRE(pipeline_split(4, 3, split, 1, 0, 0, "x", lo, &err) == 0);
	CHECK(lo[1] == 1 && lo[2] == 3 && lo[3] == 4);
	int bad[2] = { 3, 2 };
	CHECK(pipeline_split(4, 2, bad, 1, 0, 0, "r.json: parallel.pipeline_layers", lo, &err) == -1);
	CHECK(strstr(err.msg, "r.json: parallel.pipeline_layers") && strstr(err.msg, "4 layers"));
	hug_error_clear(&err);
	CHECK(pipeline_split(2, 3, NULL, 1, 0, 0, "r.json: parallel.pipeline", lo, &err) == -1);
	CHECK(strstr(err.msg, "3 pipeline stages for 2 blocks"));
}

TEST(pipeline_1f1b_order)
{
	struct pipe_op ops[16];
	/* the last stage alternates from the start */
	CHECK(pipeline_1f1b(4, 3, 8, ops) == 1);
	for (int k = 0; k < 16; k++)
		CHECK(ops[k].backward == (k % 2 == 1) && ops[k].micro == k / 2);
	/* the first stage warms up with P - 1 forwards: at most P in flight */
	CHECK(pipeline_1f1b(4, 0, 8, ops) == 4);
	CHECK(!ops[0].backward && !ops[2].backward && ops[2].micro == 2);
	CHECK(!ops[3].backward && ops[3].micro == 3 && ops[4].backward && ops[4].micro == 0);
	CHECK(ops[15].backward && ops[15].micro == 7);
	/* every micro-batch once each way, its forward before its backward */
	for (int s = 0; s < 4; s++) {
		int seen_f[8] = { 0 }, seen_b[8] = { 0 };
		pipeline_1f1b(4, s, 8, ops);
		for (int k = 0; k < 16; k++) {
			if (ops[k].backward) {
				CHECK(seen_f[ops[k].micro] && !seen_b[ops[k].micro]);
				seen_b[ops[k].micro] = 1;
			} else {
				seen_f[ops[k].micro]++;
			}
		}
		for (int i = 0; i < 8; i++)
			CHECK(seen_f[i] == 1 && seen_b[i] == 1);
	}
	/* fewer micro-batches than stages: warm-up bounded by m */
	CHECK(pipeline_1f1b(4, 0, 2, ops) == 2);
}

TEST(pipeline_bubble_matches_1f1b_theory)
{
	static const int cases[][2] = { { 2, 4 }, { 4, 8 }, { 4, 16 }, { 8, 16 }, { 12, 48 } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int P = cases[i][0], m = cases[i][1];
		double sim = pipeline_bubble_sim(P, m, 1.0, 2.0), th = pipeline_bubble_theory(P, m);
		CHECK(fabs(sim - th) < 1e-12);
	}
	CHECK(pipeline_bubble_sim(1, 4, 1.0, 2.0) == 0.0);
}

/* ---- model_forward_stage against model_forward ---- */

static float max_diff(const struct tensor *a, const struct tensor *b)
{
	float d = 0;
	for (int64_t i = 0; i < tensor_numel(a); i++)
		d = fmaxf(d, fabsf(((const float *)a->data)[i] - ((const float *)b->data)[i]));
	return d;
}

/* The whole model's loss and gradients (copied into grads of `keep`) vs
 * stages split at `cut` (1 <= cut < n_layer) and at `cut2` for a third. */
static void check_family(const char *arch, bool tie)
{
	const struct model_family *f = model_family_find(arch);
	REQUIRE(f);
	struct model_config cfg;
	struct model_sizes sz = { 50, 16, 4, 4 };
	model_config_make(&cfg, f, &sz);
	if (strcmp(arch, "bloom"))
		REQUIRE(model_config_set(&cfg, "tie_word_embeddings", tie) == 0);
	struct hug_error err = { 0 };
	REQUIRE(model_config_validate(&cfg, "t", &err) == 0);
	struct model m = { 0 };
	model_init(&m, &cfg, DT_F32, true, NULL, NULL);
	model_init_weights(&m, 7);
	struct arena mem, keep;
	arena_init(&mem, "step", 0, NULL);
	arena_init(&keep, "keep", 0, NULL);
	struct ag_ctx ctx;
	ag_ctx_init(&ctx, &mem);
	struct tensor *ids = tensor_new(&keep, DT_I32, TENSOR_SHAPE(2, 6));
	struct tensor *tg = tensor_new(&keep, DT_I32, TENSOR_SHAPE(2, 6));
	for (int i = 0; i < 12; i++) {
		((int32_t *)ids->data)[i] = (i * 7 + 3) % 50;
		((int32_t *)tg->data)[i] = (i * 11 + 1) % 50;
	}
	struct param_table *pt = model_params(&m);
	/* the whole model */
	struct tensor *loss = model_loss(&ctx, &m, model_forward(&ctx, &m, ids, NULL), tg);
	REQUIRE(loss && ag_backward(&ctx, loss) == 0);
	double whole = tensor_item(loss);
	struct tensor **g = calloc((size_t)pt->n, sizeof(*g));
	for (int i = 0; i < pt->n; i++) {
		g[i] = tensor_new_like(&keep, pt->items[i].t->grad);
		memcpy(g[i]->data, pt->items[i].t->grad->data, tensor_nbytes(g[i]));
		tensor_fill(pt->items[i].t->grad, 0.0);
	}
	/* three stages, each on its own tape, last to first for backward */
	struct model_stage st[3] = { { 0, 1, true, false }, { 1, 3, false, false },
				     { 3, 4, false, true } };
	struct arena smem[3];
	struct ag_ctx sctx[3];
	struct tensor *in[3] = { NULL }, *out[3];
	for (int s = 0; s < 3; s++) {
		arena_init(&smem[s], "stage", 0, NULL);
		ag_ctx_init(&sctx[s], &smem[s]);
		if (s > 0) { /* as received: a new leaf holding the values */
			in[s] = tensor_new_like(&smem[s], out[s - 1]);
			memcpy(in[s]->data, out[s - 1]->data, tensor_nbytes(in[s]));
			tensor_set_requires_grad(in[s], &smem[s]);
		}
		out[s] = model_forward_stage(&sctx[s], &m, &st[s], ids, NULL, in[s]);
		REQUIRE(out[s]);
	}
	struct tensor *sloss = model_loss(&sctx[2], &m, out[2], tg);
	REQUIRE(sloss);
	CHECK(tensor_item(sloss) == whole);
	REQUIRE(ag_backward(&sctx[2], sloss) == 0);
	for (int s = 1; s >= 0; s--)
		REQUIRE(ag_backward_from(&sctx[s], out[s], in[s + 1]->grad) == 0);
	float worst = 0;
	for (int i = 0; i < pt->n; i++)
		worst = fmaxf(worst, max_diff(g[i], pt->items[i].t->grad));
	printf("  %s%s: loss %.6f, max |grad diff| %.2g\n", arch, tie ? " (tied)" : "", whole,
	       (double)worst);
	CHECK(worst <= 1e-6f);
	/* a stage without the embedding needs its input */
	struct model_stage mid = { 1, 2, false, false };
	CHECK(model_forward_stage(&ctx, &m, &mid, ids, NULL, NULL) == NULL &&
	      strstr(ctx.err.msg, "hidden"));
	for (int s = 0; s < 3; s++)
		arena_free(&smem[s]);
	free(g);
	arena_free(&mem);
	arena_free(&keep);
	model_free(&m);
}

TEST(pipeline_stages_compose_to_the_whole_model)
{
	printf("\n");
	check_family("bloom", true);
	check_family("llama", false);
	check_family("llama", true);
	check_family("qwen3", false);
}

/* ---- recipe keys ---- */

/* Parses a small recipe with `parallel` as its parallel object for a
 * world of `world` processes. */
static int parse_parallel(const char *parallel, int world, struct recipe *r,
			  struct hug_error *err)
{
	const char *glob_path = test_shard_glob();
	if (!glob_path)
		return hug_error_set(err, "mkdtemp failed");
	char text[2048];
	snprintf(text, sizeof(text),
		 "{\"model\": {\"hidden_size\": 32, \"n_layer\": 4, \"n_head\": 4, \"vocab_size\": 100},"
		 " \"data\": {\"train\": [{\"path\": \"%s\"}], \"seq_len\": 16},"
		 " \"batch\": {\"micro_batch_size\": 1, \"global_batch_size\": 8},"
		 " \"parallel\": %s, \"optim\": {\"lr\": 0.001}, \"train\": {\"steps\": 5}}",
		 glob_path, parallel);
	hug_error_clear(err);
	return recipe_parse("r.json", text, NULL, 0, world, r, err);
}

TEST(pipeline_recipe_keys)
{
	struct recipe r;
	struct hug_error err = { 0 };
	REQUIRE(parse_parallel("{\"pipeline\": 2, \"pipeline_layers\": [3, 1]}", 4, &r, &err) == 0);
	CHECK(r.pipeline_parallel == 2 && r.n_pipeline_layers == 2 && r.pipeline_layers[0] == 3);
	CHECK(r.accumulation == 4); /* 8 / (1 x 2 data-parallel ranks) */
	recipe_free(&r);
	REQUIRE(parse_parallel("{}", 1, &r, &err) == 0);
	CHECK(r.pipeline_parallel == 1 && !r.pipeline_layers);
	recipe_free(&r);
	CHECK(parse_parallel("{\"pipeline\": 3}", 4, &r, &err) == -1);
	CHECK(strstr(err.msg, "r.json: parallel.pipeline: 3 stages"));
	CHECK(parse_parallel("{\"pipeline\": 2, \"pipeline_layers\": [4]}", 2, &r, &err) == -1);
	CHECK(strstr(err.msg, "r.json: parallel.pipeline_layers: 1 entries"));
	CHECK(parse_parallel("{\"pipeline\": 2, \"pipeline_layers\": [2.5, 1.5]}", 2, &r, &err) == -1);
	CHECK(strstr(err.msg, "r.json: parallel.pipeline_layers: expected whole numbers"));
	CHECK(parse_parallel("{\"pipeline\": 2, \"pipeline_layers\": \"2,2\"}", 2, &r, &err) == -1);
	CHECK(strstr(err.msg, "parallel.pipeline_layers"));
	CHECK(parse_parallel("{\"pipeline\": 0}", 1, &r, &err) == -1);
	CHECK(strstr(err.msg, "parallel.pipeline"));
}

/* A model built for one stage holds that stage's parameters only (the
 * embedding also on the last stage when the head is tied to it) and runs
 * nothing but that stage. */
TEST(pipeline_stage_model_holds_its_part)
{
	struct model_config cfg;
	struct model_sizes sz = { 50, 16, 4, 4 };
	struct hug_error err = { 0 };
	model_config_make(&cfg, model_family_find("llama"), &sz);
	REQUIRE(model_config_set(&cfg, "tie_word_embeddings", 1) == 0);
	REQUIRE(model_config_validate(&cfg, "t", &err) == 0);
	struct model whole = { 0 }, mid = { 0 }, last = { 0 };
	model_init(&whole, &cfg, DT_F32, true, NULL, NULL);
	struct model_tp tp = { .rank = 0, .size = 1, .stage = { 1, 3, false, false } };
	model_init(&mid, &cfg, DT_F32, true, &tp, NULL);
	tp.stage = (struct model_stage){ 3, 4, false, true };
	model_init(&last, &cfg, DT_F32, true, &tp, NULL);
	int per_block = (model_params(&whole)->n - 2) / 4; /* embed_tokens, norm */
	CHECK(model_params(&mid)->n == 2 * per_block);
	CHECK(!param_table_find(model_params(&mid), "model.embed_tokens.weight"));
	CHECK(param_table_find(model_params(&mid), "model.layers.1.mlp.up_proj.weight"));
	CHECK(!param_table_find(model_params(&mid), "model.layers.3.mlp.up_proj.weight"));
	CHECK(model_params(&last)->n == per_block + 2); /* tied: embed_tokens kept */
	CHECK(param_table_find(model_params(&last), "model.embed_tokens.weight"));
	CHECK(param_table_numel(model_params(&mid)) < param_table_numel(model_params(&whole)) / 2);
	struct arena mem;
	arena_init(&mem, "step", 0, NULL);
	struct ag_ctx ctx;
	ag_ctx_init(&ctx, &mem);
	struct tensor *ids = tensor_zeros(&mem, DT_I32, TENSOR_SHAPE(1, 4));
	CHECK(model_forward(&ctx, &mid, ids, NULL) == NULL && strstr(ctx.err.msg, "one pipeline stage"));
	ag_ctx_reset(&ctx);
	struct model_stage other = { 0, 2, true, false };
	CHECK(model_forward_stage(&ctx, &mid, &other, ids, NULL, NULL) == NULL &&
	      strstr(ctx.err.msg, "holds blocks [1, 3) only"));
	arena_free(&mem);
	model_free(&whole);
	model_free(&mid);
	model_free(&last);
}
