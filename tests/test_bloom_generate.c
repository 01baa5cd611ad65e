/* test_bloom_generate.c: the KV cache gives the logits of a full forward,
 * and the sampler does what each option says. */
#include <string.h>

#include "../base/alloc.h"
#include "../nn/generate.h"
#include "ag_env.h"
#include "bloom_util.h"
#include "gradcheck.h"
#include "harness.h"

static void random_model(struct bloom_model *m, enum dtype dt)
{
	struct bloom_config c = bloom_config_make(23, 12, 2, 3);
	bloom_model_init(m, &c, dt, false);
	for (int i = 0; i < m->table.n; i++)
		gradcheck_fill_uniform(m->table.items[i].t, 900 + (uint64_t)i, -0.7, 0.7);
}

static void check_cache_matches_full(enum dtype dt, double tol)
{
	struct bloom_model m;
	random_model(&m, dt);
	struct ag_env e;
	ag_env_init(&e, 0);
	e.ctx.training = false;
	ag_set_grad_enabled(&e.ctx, false);
	const int32_t seq[9] = { 5, 1, 22, 7, 7, 0, 13, 2, 9 };
	struct tensor *all = tensor_new(&e.model, DT_I32, TENSOR_SHAPE(1, 9));
	memcpy(all->data, seq, sizeof(seq));
	struct tensor *full = bloom_forward(&e.ctx, &m, all, NULL);
	REQUIRE(full);
	double *want = hug_malloc(9 * 23 * sizeof(double));
	tensor_read_f64(full, want);

	struct kv_cache kv;
	bloom_kv_cache_init(&kv, &m, 1, 9);
	/* a prompt of 4, then one token at a time */
	double worst = 0, got[4 * 23];
	for (int pos = 0; pos < 9;) {
		int n = pos == 0 ? 4 : 1;
		ag_ctx_reset(&e.ctx);
		struct tensor *ids = ag_slice(&e.ctx, all, 1, pos, n);
		struct tensor *lg = bloom_forward_cached(&e.ctx, &m, &kv, ag_contiguous(&e.ctx, ids), NULL);
		REQUIRE(lg);
		tensor_read_f64(lg, got);
		for (int i = 0; i < n * 23; i++)
			worst = fmax(worst, fabs(got[i] - want[pos * 23 + i]));
		pos += n;
	}
	CHECK(kv.len == 9);
	CHECK(worst <= tol);
	/* the cache is full: one more position is an error */
	ag_ctx_reset(&e.ctx);
	struct tensor *one = ag_contiguous(&e.ctx, ag_slice(&e.ctx, all, 1, 0, 1));
	CHECK(bloom_forward_cached(&e.ctx, &m, &kv, one, NULL) == NULL);
	CHECK(strstr(e.ctx.err.msg, "cache") != NULL);
	printf("(max |diff| %.3g) ", worst);
	kv_cache_free(&kv);
	hug_free(want);
	ag_env_free(&e);
	bloom_model_free(&m);
}

TEST(kv_cache_logits_match_full_forward_f64)
{
	check_cache_matches_full(DT_F64, 1e-12);
}

TEST(kv_cache_logits_match_full_forward_f32)
{
	check_cache_matches_full(DT_F32, 1e-5);
}

TEST(sampler_greedy_topk_topp_temperature)
{
	const double lg[6] = { 0.1, 2.0, -1.0, 1.5, 0.0, 1.9 };
	double work[12];
	int32_t iwork[6];
	struct gen_opts o = gen_opts_default();
	o.greedy = true;
	CHECK(gen_sample(lg, 6, &o, 0, work, iwork) == 1);
	o.greedy = false;
	o.top_k = 1;
	for (int s = 0; s < 20; s++)
		CHECK(gen_sample(lg, 6, &o, (uint64_t)s, work, iwork) == 1);
	o.top_k = 0;
	o.top_p = 1e-6;
	CHECK(gen_sample(lg, 6, &o, 3, work, iwork) == 1);
	/* top-k 3 only ever picks ids 1, 5, 3; frequencies follow softmax */
	o.top_p = 1.0;
	o.top_k = 3;
	int count[6] = { 0 };
	for (int s = 0; s < 20000; s++)
		count[gen_sample(lg, 6, &o, (uint64_t)s, work, iwork)]++;
	CHECK(count[0] == 0 && count[2] == 0 && count[4] == 0);
	double z = exp(2.0) + exp(1.9) + exp(1.5);
	CHECK_NEAR(count[1] / 20000.0, exp(2.0) / z, 0.015);
	CHECK_NEAR(count[3] / 20000.0, exp(1.5) / z, 0.015);
	/* a low temperature concentrates on the best */
	o.top_k = 0;
	o.temperature = 0.05;
	int best = 0;
	for (int s = 0; s < 200; s++)
		best += gen_sample(lg, 6, &o, (uint64_t)s, work, iwork) == 1;
	CHECK(best >= 170);
	/* reproducible: same seed and step, same token */
	o.temperature = 1.0;
	o.seed = 99;
	CHECK(gen_sample(lg, 6, &o, 17, work, iwork) == gen_sample(lg, 6, &o, 17, work, iwork));
}

TEST(generate_is_deterministic_and_validates)
{
	struct bloom_model m;
	random_model(&m, DT_F32);
	struct hug_error err = { 0 };
	struct gen_opts o = gen_opts_default();
	o.max_new_tokens = 12;
	o.seed = 5;
	o.top_p = 0.9;
	const int32_t prompt[3] = { 4, 8, 15 };
	int32_t a[12], b[12];
	REQUIRE(bloom_generate(&m, prompt, 3, &o, a, &err) == 12);
	REQUIRE(bloom_generate(&m, prompt, 3, &o, b, &err) == 12);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
	for (int i = 0; i < 12; i++)
		CHECK(a[i] >= 0 && a[i] < 23);
	/* greedy generation continues the argmax of the full forward */
	o.greedy = true;
	o.max_new_tokens = 1;
	REQUIRE(bloom_generate(&m, prompt, 3, &o, a, &err) == 1);
	/* stop id */
	o.max_new_tokens = 12;
	REQUIRE(gen_opts_add_stop(&o, a[0]) == 0);
	CHECK(bloom_generate(&m, prompt, 3, &o, b, &err) == 1);
	/* bad input */
	const int32_t bad[2] = { 4, 23 };
	CHECK(bloom_generate(&m, bad, 2, &o, a, &err) == -1);
	CHECK(strstr(err.msg, "23") && strstr(err.msg, "vocabulary"));
	hug_error_clear(&err);
	o.top_p = 0;
	CHECK(bloom_generate(&m, prompt, 3, &o, a, &err) == -1);
	CHECK(strstr(err.msg, "top-p") != NULL);
	bloom_model_free(&m);
}
