/* test_train.c: the trainer in-process on the counting corpus: the loss
 * falls by a stated margin over 200 steps, and gradient accumulation over 4
 * micro-batches equals one batch 4 times larger. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../train/trainer.h"
#include "harness.h"
#include "train_fixture.h"

static int load_recipe(const char *dir, const char *train_extra, const char *top_extra,
		       const char *const *ov, int n_ov, struct recipe *r)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/recipe.json", dir);
	if (train_fixture_recipe_in(dir, NULL, train_extra, top_extra))
		return -1;
	struct hug_error err = { 0 };
	if (recipe_load(path, ov, n_ov, 1, r, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return -1;
	}
	return 0;
}

TEST(train_loss_falls_over_200_steps)
{
	const char *dir = train_fixture_shards(2, 20000);
	REQUIRE(dir);
	struct recipe r;
	REQUIRE(load_recipe(dir, ", \"steps\": 200", NULL, NULL, 0, &r) == 0);
	struct trainer t;
	struct hug_error err = { 0 };
	REQUIRE(trainer_init(&t, &r, &err) == 0);
	double first = 0, last = 0;
	for (int s = 0; s < 200; s++) {
		struct step_result res;
		if (trainer_step(&t, &res, &err)) {
			test_fail_at(__FILE__, __LINE__, "%s", err.msg);
			break;
		}
		if (s < 10)
			first += res.loss / 10;
		if (s >= 190)
			last += res.loss / 10;
	}
	printf("(loss %.3f -> %.3f) ", first, last);
	/* ln(64) = 4.16 at the start; the counting patterns are learnable */
	CHECK(first > 3.5);
	CHECK(last < first - 1.5);
	double valid;
	CHECK(trainer_eval(&t, &valid, &err) == 0 && isnan(valid)); /* no validation data */
	trainer_free(&t);
	recipe_free(&r);
	train_fixture_rmtree(dir);
}

/* One step of the recipe with the given micro batch; params copied out.
 * The step is plain SGD at lr 1, so a parameter moves by its (clipped)
 * gradient (and the same decay in both runs): the comparison below is one
 * of accumulated gradients.
 * AdamW's first step, lr g / (|g| + eps), would turn rounding noise in a
 * gradient that cancels to about eps into parameter differences lr/eps
 * (3e5) times larger (one dense weight has g = -2.8e-9 at this seed). */
static int one_step_params(const char *dir, const char *micro, double *params, int64_t n)
{
	struct recipe r;
	const char *ov[] = { micro, "batch.global_batch_size=8", "train.steps=1",
			     "schedule.warmup_steps=0", "optim.name=\"sgd\"", "optim.lr=1",
			     "schedule.decay=\"constant\"" };
	if (load_recipe(dir, "", NULL, ov, 7, &r))
		return -1;
	struct trainer t;
	struct hug_error err = { 0 };
	int rc = trainer_init(&t, &r, &err);
	struct step_result res;
	if (!rc)
		rc = trainer_step(&t, &res, &err);
	int64_t off = 0;
	for (int i = 0; !rc && i < model_params(&t.model)->n; i++) {
		struct tensor *p = model_params(&t.model)->items[i].t;
		if (off + tensor_numel(p) > n)
			break;
		tensor_read_f64(p, params + off);
		off += tensor_numel(p);
	}
	if (rc)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	else
		trainer_free(&t);
	recipe_free(&r);
	return rc;
}

TEST(train_grad_accumulation_equals_big_batch)
{
	const char *dir = train_fixture_shards(1, 8000);
	REQUIRE(dir);
	enum { N = 64 * 32 + 4 * 32 + 2 * (12 * 32 * 32 + 13 * 32) };
	static double a[N], b[N];
	REQUIRE(one_step_params(dir, "batch.micro_batch_size=8", a, N) == 0);
	REQUIRE(one_step_params(dir, "batch.micro_batch_size=2", b, N) == 0);
	double worst = 0;
	for (int i = 0; i < N; i++)
		worst = fmax(worst, fabs(a[i] - b[i]));
	printf("(max |diff| %.2g) ", worst);
	CHECK(worst <= 1e-6);
	train_fixture_rmtree(dir);
}

TEST(train_refuses_shards_of_another_tokenizer)
{
	const char *dir = train_fixture_shards(1, 2000);
	REQUIRE(dir);
	struct recipe r;
	const char *ov[] = { "data.tokenizer=\"tests/fixtures/tokenizer/bloom.json\"" };
	REQUIRE(load_recipe(dir, ", \"steps\": 50", NULL, ov, 1, &r) == 0);
	struct trainer t;
	struct hug_error err = { 0 };
	CHECK(trainer_init(&t, &r, &err) == -1);
	CHECK(strstr(err.msg, "data.train[0].path") != NULL);
	/* the vocabulary size differs first; the hash would too */
	CHECK(strstr(err.msg, "vocab_size is 64, expected 600") != NULL);
	recipe_free(&r);
	train_fixture_rmtree(dir);
}

/* The message of trainer_init for the recipe with overrides ov, or NULL
 * when it succeeded (then the trainer is freed). */
static const char *init_error(const char *dir, const char *const *ov, int n_ov,
			      struct hug_error *err)
{
	struct recipe r;
	if (load_recipe(dir, ", \"steps\": 20", NULL, ov, n_ov, &r))
		return "(recipe did not load)";
	struct trainer t;
	int rc = trainer_init(&t, &r, err);
	if (!rc)
		trainer_free(&t);
	recipe_free(&r);
	return rc ? err->msg : NULL;
}

/* bf16 needs the GPU; device "cuda" without a GPU (or without CUDA in the
 * build) is a clean error naming the recipe key, not a crash. */
TEST(train_device_and_precision_errors)
{
	const char *dir = train_fixture_shards(1, 2000);
	REQUIRE(dir);
	struct hug_error err = { 0 };
	const char *bf16[] = { "precision=\"bf16\"" };
	const char *msg = init_error(dir, bf16, 1, &err);
	CHECK(msg && strstr(msg, "precision") && strstr(msg, "needs device \"cuda\""));
	const char *cuda[] = { "device=\"cuda\"" };
	memset(&err, 0, sizeof(err));
	msg = init_error(dir, cuda, 1, &err);
	if (!msg) { /* a machine with a GPU: the CUDA tests cover this path */
		train_fixture_rmtree(dir);
		SKIP("a GPU is present");
	}
	printf("(%s) ", msg);
	CHECK(strstr(msg, "recipe.json: device") != NULL);
	CHECK(strstr(msg, "no CUDA device") || strstr(msg, "built without CUDA"));
	train_fixture_rmtree(dir);
}
