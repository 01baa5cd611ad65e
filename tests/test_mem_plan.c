/* test_mem_plan.c: the memory plan (train/mem_plan.c) against what hug
 * allocates: the step arena's high-water mark after one training step
 * (activations, their gradients, logits: the part the plan computes op by
 * op), and the peak RSS of `hug train` child processes at three shapes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../train/mem_plan.h"
#include "../train/recipe.h"
#include "../train/trainer.h"
#include "harness.h"
#include "train_fixture.h"

/* One trainer step of the fixture recipe with overrides ov; the step
 * arena's high-water mark and the plan's step-memory terms. */
static void step_memory(const char *dir, const char *const *ov, int n_ov, int64_t *measured,
			int64_t *planned)
{
	struct recipe r;
	struct trainer t;
	*measured = *planned = -1;
	if (train_fixture_open(dir, ov, n_ov, &r, &t))
		return;
	struct step_result res;
	struct hug_error err = { 0 };
	if (trainer_step(&t, &res, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	} else {
		struct mem_layout l;
		struct mem_plan p;
		mem_layout_of_recipe(&r, 1, &l);
		mem_plan_compute(&r.model, &l, &p);
		*measured = (int64_t)t.step_mem.high_water;
		*planned = p.activations + p.logits + p.params_cast + p.grads_cast;
	}
	trainer_free(&t);
	recipe_free(&r);
}

TEST(mem_plan_step_arena_matches_the_tape)
{
	const char *dir = train_fixture_setup(20000, NULL, ", \"steps\": 20");
	if (!dir) {
		CHECK(dir != NULL);
		return;
	}
	static const char *const shapes[][8] = {
		{ "model.vocab_size=64", "model.hidden_size=32", "model.n_layer=2", "model.n_head=4",
		  "data.seq_len=32", "batch.micro_batch_size=4", "batch.global_batch_size=4", NULL },
		{ "model.vocab_size=512", "model.hidden_size=64", "model.n_layer=3", "model.n_head=8",
		  "data.seq_len=128", "batch.micro_batch_size=2", "batch.global_batch_size=2", NULL },
		{ "model.arch=\"llama\"", "model.vocab_size=256", "model.hidden_size=64",
		  "model.n_layer=2", "model.n_head=8", "model.num_key_value_heads=2",
		  "data.seq_len=96", "batch.micro_batch_size=2" },
		{ "model.arch=\"qwen3\"", "model.vocab_size=256", "model.hidden_size=64",
		  "model.n_layer=2", "model.n_head=4", "model.num_key_value_heads=2",
		  "data.seq_len=64", "batch.micro_batch_size=2" },
	};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		const char *ov[10];
		int n = 0;
		for (int k = 0; k < 8 && shapes[i][k]; k++)
			ov[n++] = shapes[i][k];
		if (n == 8)
			ov[n++] = "batch.global_batch_size=2";
		int64_t m, p;
		step_memory(dir, ov, n, &m, &p);
		printf("  shape %zu: step arena %lld bytes, planned %lld (%+.2f%%)\n", i,
		       (long long)m, (long long)p, 100.0 * (double)(p - m) / (double)m);
		CHECK(m > 0);
		CHECK(p > 0.98 * (double)m && p < 1.02 * (double)m);
	}
	train_fixture_rmtree(dir);
}
