/* test_optim.c: AdamW and SGD against torch.optim trajectories
 * (tests/fixtures/optim.safetensors, made by tools/ref/make_optim_fixtures.py),
 * clipping against clip_grad_norm_'s definition, frozen parameters without
 * state, the learning-rate schedules against their documented formulas, and
 * the batch-size ramp-up. */
#include <math.h>
#include <string.h>

#include "../io/safetensors.h"
#include "../optim/optimizer.h"
#include "../optim/schedule.h"
#include "harness.h"

#define FIXTURE "tests/fixtures/optim.safetensors"

static const char *const names[3] = { "w", "b", "ln" };

struct optim_env {
	struct arena params, grads;
	struct param_table pt;
	struct st_file f;
};

static struct tensor *load(struct optim_env *e, const char *key, struct tensor *dst)
{
	struct hug_error err = { 0 };
	const struct st_tensor *st = st_find(&e->f, key);
	if (!st) {
		test_fail_at(__FILE__, __LINE__, "fixture has no %s", key);
		return NULL;
	}
	if (st_tensor_load(st, dst, &err))
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	return dst;
}

static int env_open(struct optim_env *e, const char *cs)
{
	struct hug_error err = { 0 };
	memset(e, 0, sizeof(*e));
	if (st_open(&e->f, FIXTURE, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return -1;
	}
	arena_init(&e->params, "params", 0, NULL);
	arena_init(&e->grads, "grads", 0, NULL);
	param_table_init(&e->pt);
	const int64_t shapes[3][2] = { { 5, 7 }, { 7, 0 }, { 3, 0 } };
	for (int i = 0; i < 3; i++) {
		struct tensor *t = tensor_new(&e->params, DT_F32, i == 0 ? 2 : 1, shapes[i]);
		tensor_set_requires_grad(t, &e->grads);
		char key[64];
		snprintf(key, sizeof(key), "%s.init.%s", cs, names[i]);
		load(e, key, t);
		param_table_add(&e->pt, names[i], t, i != 0);
	}
	return 0;
}

static void env_close(struct optim_env *e)
{
	param_table_free(&e->pt);
	arena_free(&e->params);
	arena_free(&e->grads);
	st_close(&e->f);
}

/* max |a - b| over the elements of two f32 tensors of the same shape */
static double max_abs_diff(const struct tensor *a, const struct tensor *b)
{
	const float *x = a->data, *y = b->data;
	double d = 0;
	for (int64_t i = 0; i < tensor_numel(a); i++)
		d = fmax(d, fabs((double)x[i] - (double)y[i]));
	return d;
}

static void replay(const char *cs, struct optim_config cfg)
{
	struct optim_env e;
	if (env_open(&e, cs))
		return;
	struct optimizer o;
	optim_init(&o, &cfg, &e.pt);
	struct arena tmp;
	arena_init(&tmp, "tmp", 0, NULL);
	char key[64];
	snprintf(key, sizeof(key), "%s.lr", cs);
	const struct st_tensor *lrs = st_find(&e.f, key);
	REQUIRE(lrs && lrs->dtype == DT_F64);
	double worst = 0;
	for (int step = 0; step < (int)lrs->shape[0]; step++) {
		for (int i = 0; i < 3; i++) {
			snprintf(key, sizeof(key), "%s.grad%d.%s", cs, step, names[i]);
			load(&e, key, e.pt.items[i].t->grad);
		}
		optim_step(&o, ((const double *)lrs->data)[step]);
		for (int i = 0; i < 3; i++) {
			struct tensor *want = tensor_new_like(&tmp, e.pt.items[i].t);
			snprintf(key, sizeof(key), "%s.param%d.%s", cs, step, names[i]);
			load(&e, key, want);
			worst = fmax(worst, max_abs_diff(e.pt.items[i].t, want));
			if (o.slots[i].v) {
				snprintf(key, sizeof(key), "%s.exp_avg_sq%d.%s", cs, step, names[i]);
				load(&e, key, want);
				worst = fmax(worst, max_abs_diff(o.slots[i].v, want));
			}
		}
		arena_reset(&tmp);
	}
	printf("(max |diff| %.2g) ", worst);
	CHECK(worst <= 1e-6);
	CHECK(o.step == lrs->shape[0]);
	optim_free(&o);
	arena_free(&tmp);
	env_close(&e);
}

TEST(optim_adamw_matches_torch)
{
	struct optim_config c = optim_config_adamw();
	c.beta2 = 0.95;
	c.weight_decay = 0.1;
	replay("adamw", c);
}

TEST(optim_sgd_momentum_matches_torch)
{
	replay("sgd", (struct optim_config){ .kind = OPTIM_SGD, .momentum = 0.9,
					     .weight_decay = 0.01 });
}

TEST(optim_sgd_nesterov_matches_torch)
{
	replay("sgd_nesterov", (struct optim_config){ .kind = OPTIM_SGD, .momentum = 0.8,
						      .nesterov = true });
}

TEST(optim_clip_and_frozen_params)
{
	struct arena a, g;
	arena_init(&a, "p", 0, NULL);
	arena_init(&g, "g", 0, NULL);
	struct param_table pt;
	param_table_init(&pt);
	struct tensor *x = tensor_new(&a, DT_F32, TENSOR_SHAPE(4));
	struct tensor *frozen = tensor_new(&a, DT_F32, TENSOR_SHAPE(1000));
	tensor_set_requires_grad(x, &g);
	param_table_add(&pt, "x", x, false);
	param_table_add(&pt, "frozen", frozen, false);
	struct optim_config c = optim_config_adamw();
	struct optimizer o;
	optim_init(&o, &c, &pt);
	CHECK(o.n == 1); /* the frozen parameter has no slot and no state */
	CHECK(optim_state_bytes(&o) == 2 * 4 * sizeof(float));
	const float gv[4] = { 3, 4, 0, 12 }; /* norm 13 */
	memcpy(x->grad->data, gv, sizeof(gv));
	double n = optim_grad_norm(&o);
	CHECK_NEAR(n, 13.0, 1e-12);
	CHECK_NEAR(optim_clip_grads(&o, n, 6.5), 6.5 / (13 + 1e-6), 1e-15);
	CHECK_NEAR(((float *)x->grad->data)[3], 12 * 6.5 / (13 + 1e-6), 1e-6);
	CHECK_NEAR(optim_grad_norm(&o), 6.5, 1e-5);
	CHECK(optim_clip_grads(&o, 6.5, 0) == 1.0); /* 0: no clipping */
	CHECK_NEAR(optim_grad_norm(&o), 6.5, 1e-5);
	/* the norm is the caller's (the trainer's is reduced over ranks): a
	 * norm of 26 over the limit 6.5 scales these gradients by 1/4 */
	CHECK_NEAR(optim_clip_grads(&o, 26.0, 6.5), 6.5 / (26 + 1e-6), 1e-15);
	CHECK_NEAR(optim_grad_norm(&o), 6.5 * 6.5 / (26 + 1e-6), 1e-5);
	CHECK(optim_clip_grads(&o, 1.0, 6.5) == 1.0); /* under the limit */
	((float *)x->grad->data)[0] = NAN;
	n = optim_grad_norm(&o);
	CHECK(isnan(n));
	CHECK(optim_clip_grads(&o, n, 1.0) == 1.0);   /* NaN: nothing scaled */
	CHECK(optim_clip_grads(&o, INFINITY, 1.0) == 1.0);
	CHECK_NEAR(((float *)x->grad->data)[3], 12 * 6.5 / (13 + 1e-6) * 6.5 / (26 + 1e-6), 1e-6);
	optim_zero_grad(&o);
	CHECK(((float *)x->grad->data)[0] == 0 && ((float *)x->grad->data)[3] == 0);
	CHECK(optim_set_decay(&o, "x*", false) == 1 && !o.slots[0].decay);
	optim_free(&o);
	param_table_free(&pt);
	arena_free(&a);
	arena_free(&g);
}

TEST(schedule_matches_formula)
{
	struct lr_schedule s = { LR_COSINE, 3e-4, 1e-5, 10, 110 };
	for (int64_t step = 0; step < 130; step++) {
		double n = (double)(step + 1), want;
		if (n <= 10)
			want = 3e-4 * n / 10;
		else {
			double r = fmin(1.0, (n - 10) / 100);
			want = 1e-5 + (3e-4 - 1e-5) * 0.5 * (1 + cos(M_PI * r));
		}
		CHECK_NEAR(lr_at(&s, step), want, 1e-15);
	}
	CHECK_NEAR(lr_at(&s, 9), 3e-4, 1e-18);
	CHECK_NEAR(lr_at(&s, 109), 1e-5, 1e-18);
	s.decay = LR_LINEAR;
	CHECK_NEAR(lr_at(&s, 59), 3e-4 - (3e-4 - 1e-5) * 0.5, 1e-15);
	s.decay = LR_CONSTANT;
	CHECK_NEAR(lr_at(&s, 100), 3e-4, 0);
	s.warmup_steps = 0;
	s.decay = LR_COSINE;
	CHECK_NEAR(lr_at(&s, 0), 1e-5 + (3e-4 - 1e-5) * 0.5 * (1 + cos(M_PI / 110)), 1e-15);
}

TEST(batch_rampup_matches_megatron)
{
	/* BLOOM-176B: --rampup-batch-size 192 32 9765625, global batch 2048 */
	struct batch_rampup r = { 192, 32, 9765625, 2048 };
	double per = 9765625.0 / 58.0; /* (2048 - 192) / 32 = 58 increments */
	CHECK(batch_at(&r, 0) == 192);
	CHECK(batch_at(&r, (int64_t)per - 1) == 192);
	CHECK(batch_at(&r, (int64_t)per + 1) == 224);
	CHECK(batch_at(&r, (int64_t)(10 * per) + 1) == 192 + 320);
	CHECK(batch_at(&r, 9765625) == 2048);
	CHECK(batch_at(&r, 99999999) == 2048);
	struct batch_rampup none = { 0, 0, 0, 256 };
	CHECK(batch_at(&none, 12345) == 256);
}
