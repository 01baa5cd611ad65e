/* test_nonfinite_train.c: the training guard against NaN/Inf: a divergent
 * AdamW run (lr 10, weight decay 10) never keeps a non-finite weight or
 * moment; an update that overflows exp_avg_sq under a finite loss stops the
 * run; the post-update check
 * names the tensor; skip_nonfinite stops after train.max_skipped_steps
 * consecutive skips. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../optim/finite_check.h"
#include "../train/recipe.h"
#include "../train/trainer.h"
#include "../train/update_check.h"
#include "harness.h"
#include "train_fixture.h"

#define BIG_WEIGHT 1e25f

/* A run directory with recipe.json (train_extra appended to "train"). */
static const char *setup(const char *train_extra)
{
	return train_fixture_setup(20000, NULL, train_extra);
}

/* Every weight and moment finite (checked independently of finite_check). */
static bool state_finite(const struct optimizer *o)
{
	for (int i = 0; i < o->n; i++) {
		const struct optim_slot *s = &o->slots[i];
		const float *p = (const float *)s->param->t->data + s->off;
		const float *m = s->m ? s->m->data : NULL, *v = s->v ? s->v->data : NULL;
		for (int64_t k = 0; k < s->len; k++)
			if (!isfinite(p[k]) || (m && !isfinite(m[k])) || (v && !isfinite(v[k])))
				return false;
	}
	return true;
}

TEST(nonfinite_divergent_adamw_stops_before_bad_state_is_kept)
{
	const char *dir = setup(", \"steps\": 300");
	REQUIRE(dir);
	const char *ov[] = { "optim.lr=10", "optim.weight_decay=10", "optim.grad_clip=0",
			     "schedule.warmup_steps=0", "schedule.decay=\"constant\"" };
	struct recipe r;
	struct trainer t;
	REQUIRE(train_fixture_open(dir, ov, 5, &r, &t) == 0);
	struct hug_error err = { 0 };
	int rc = 0, n = 0;
	while (n < 300 && (rc = trainer_step(&t, &(struct step_result){ 0 }, &err)) == 0) {
		n++;
		if (!state_finite(&t.opt)) {
			test_fail_at(__FILE__, __LINE__, "step %d: non-finite state kept", n);
			break;
		}
	}
	printf("(stopped after %d steps: %s) ", n, err.msg);
	CHECK(rc == -1); /* the loss or the state went non-finite: an error either way */
	trainer_free(&t);
	recipe_free(&r);
	train_fixture_rmtree(dir);
}

/* A huge weight gives a finite loss and gradient norm (in double) but a
 * squared gradient beyond f32: exp_avg_sq overflows in the update. */
TEST(nonfinite_overflowing_moment_stops_the_run)
{
	const char *dir = setup(", \"steps\": 20");
	REQUIRE(dir);
	const char *ov[] = { "optim.grad_clip=0" };
	struct recipe r;
	struct trainer t;
	REQUIRE(train_fixture_open(dir, ov, 1, &r, &t) == 0);
	struct param *ln = param_table_find(model_params(&t.model), "transformer.ln_f.weight");
	REQUIRE(ln);
	((float *)ln->t->data)[0] = BIG_WEIGHT;
	struct hug_error err = { 0 };
	struct step_result res = { 0 };
	int rc = trainer_step(&t, &res, &err);
	printf("(loss %g, norm %g: %s) ", res.loss, res.grad_norm, rc ? err.msg : "ok");
	CHECK(isfinite(res.loss) && isfinite(res.grad_norm));
	CHECK(rc == -1);
	CHECK(strstr(err.msg, "step 1: exp_avg_sq of ") != NULL);
	CHECK(strstr(err.msg, "optim.lr") != NULL);
	trainer_free(&t);
	recipe_free(&r);
	train_fixture_rmtree(dir);
}

TEST(nonfinite_update_check_names_the_moment)
{
	const char *dir = setup(", \"steps\": 20");
	REQUIRE(dir);
	struct recipe r;
	struct trainer t;
	REQUIRE(train_fixture_open(dir, NULL, 0, &r, &t) == 0);
	struct hug_error err = { 0 };
	REQUIRE(trainer_step(&t, &(struct step_result){ 0 }, &err) == 0);
	CHECK(trainer_check_update(&t, &err) == 0);
	const struct optim_slot *s = &t.opt.slots[2];
	((float *)s->v->data)[3] = INFINITY;
	CHECK(trainer_check_update(&t, &err) == -1);
	char want[256];
	snprintf(want, sizeof(want), "exp_avg_sq of %s", s->param->name);
	CHECK(strstr(err.msg, want) != NULL);
	((float *)s->v->data)[3] = 0;
	((float *)s->param->t->data)[s->off] = NAN;
	err = (struct hug_error){ 0 };
	CHECK(trainer_check_update(&t, &err) == -1);
	snprintf(want, sizeof(want), "parameter %s", s->param->name);
	CHECK(strstr(err.msg, want) != NULL);
	trainer_free(&t);
	recipe_free(&r);
	train_fixture_rmtree(dir);
}

TEST(nonfinite_skip_stops_after_max_consecutive)
{
	const char *dir = setup(", \"steps\": 40, \"skip_nonfinite\": true, \"max_skipped_steps\": 3");
	REQUIRE(dir);
	struct recipe r;
	struct trainer t;
	REQUIRE(train_fixture_open(dir, NULL, 0, &r, &t) == 0);
	CHECK(r.max_skipped_steps == 3);
	struct hug_error err = { 0 };
	struct step_result res;
	/* one finite step, then a NaN final LayerNorm: every loss is NaN */
	REQUIRE(trainer_step(&t, &res, &err) == 0);
	CHECK(!res.skipped);
	struct param *ln = param_table_find(model_params(&t.model), "transformer.ln_f.weight");
	REQUIRE(ln);
	float *w = ln->t->data, keep = w[0];
	w[0] = NAN;
	CHECK(trainer_step(&t, &res, &err) == 0 && res.skipped);
	CHECK(trainer_step(&t, &res, &err) == 0 && res.skipped);
	w[0] = keep; /* a finite step resets the count */
	CHECK(trainer_step(&t, &res, &err) == 0 && !res.skipped);
	w[0] = NAN;
	CHECK(trainer_step(&t, &res, &err) == 0 && res.skipped);
	CHECK(trainer_step(&t, &res, &err) == 0 && res.skipped);
	CHECK(trainer_step(&t, &res, &err) == -1);
	CHECK(strstr(err.msg, "max_skipped_steps") != NULL);
	trainer_free(&t);
	recipe_free(&r);
	train_fixture_rmtree(dir);
}

TEST(nonfinite_max_skipped_steps_default_and_range)
{
	const char *dir = setup(", \"steps\": 20");
	REQUIRE(dir);
	char path[512];
	snprintf(path, sizeof(path), "%s/recipe.json", dir);
	struct recipe r;
	struct hug_error err = { 0 };
	REQUIRE(recipe_load(path, NULL, 0, 1, &r, &err) == 0);
	CHECK(r.max_skipped_steps == 10);
	recipe_free(&r);
	const char *ov[] = { "train.max_skipped_steps=0" };
	CHECK(recipe_load(path, ov, 1, 1, &r, &err) == -1);
	CHECK(strstr(err.msg, "max_skipped_steps") != NULL);
	train_fixture_rmtree(dir);
}
