/* test_train_tokens.c: with loss masks, the step's loss is normalised by
 * the counted target tokens of the whole global batch: the update does not
 * depend on how the batch is split into micro-batches or data-parallel
 * ranks, an all-masked micro-batch changes nothing, a step with no counted
 * target is skipped, and validation gives the same number on any number of
 * ranks; and one accumulated step equals transformers' Trainer (fixture
 * from tools/ref/make_sft_trainer_fixture.py). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../base/json.h"
#include "../data/shard.h"
#include "../io/safetensors.h"
#include "../train/trainer.h"
#include "harness.h"
#include "train_fixture.h"

/* Counting documents (as train_fixture_shards) with loss masks: a quarter
 * of the documents (40 to 79 tokens) fully masked, the others masked for a
 * prompt of random length, so windows count very different numbers of
 * targets and some count none. One shard under a new /tmp/hug-train-*
 * directory, NULL on error. */
static int masked_doc(uint64_t *x, int32_t *doc, uint8_t *mask)
{
	*x = *x * 6364136223846793005ull + 1442695040888963407ull;
	int start = (int)(*x >> 33) % 60, stride = 1 + (int)(*x >> 40) % 3;
	bool all_masked = (*x >> 20) % 4 == 0;
	int n = all_masked ? 40 + (int)(*x >> 50) % 40 : 20 + (int)(*x >> 50) % 19;
	int prompt = all_masked ? n + 1 : (int)(*x >> 44) % (n + 1);
	for (int i = 0; i < n; i++) {
		doc[i] = 4 + (start + i * stride) % 60;
		mask[i] = i >= prompt;
	}
	doc[n] = 2;
	mask[n] = !all_masked;
	return n + 1;
}

static const char *masked_shards(int64_t tokens)
{
	return train_fixture_shards_of(1, tokens, "masked", 987654321, true, masked_doc);
}

enum { N_PARAMS = 64 * 32 + 4 * 32 + 2 * (12 * 32 * 32 + 13 * 32) };

/* Builds the trainer for DIR's shards: one step of plain SGD at lr 1 over
 * a global batch `global`, micro batch `micro`, seed `seed`. 0 or -1 (a
 * test failure recorded). */
static int open_sgd(const char *dir, int global, int micro, int seed, struct recipe *r,
		    struct trainer *t)
{
	char o1[64], o2[64], o3[64];
	snprintf(o1, sizeof(o1), "batch.global_batch_size=%d", global);
	snprintf(o2, sizeof(o2), "batch.micro_batch_size=%d", micro);
	snprintf(o3, sizeof(o3), "train.seed=%d", seed);
	const char *ov[] = { o1, o2, o3, "train.steps=1", "schedule.warmup_steps=0",
			     "optim.name=\"sgd\"", "optim.lr=1", "schedule.decay=\"constant\"",
			     "optim.weight_decay=0" };
	if (train_fixture_recipe_in(dir, NULL, "", NULL))
		return -1;
	return train_fixture_open(dir, ov, 9, r, t);
}

/* Copies the trainer's parameters (the first N_PARAMS values) to p. */
static void read_params(const struct trainer *t, double *p)
{
	int64_t off = 0;
	for (int i = 0; i < model_params(&t->model)->n; i++) {
		struct tensor *x = model_params(&t->model)->items[i].t;
		if (off + tensor_numel(x) > N_PARAMS)
			break;
		tensor_read_f64(x, p + off);
		off += tensor_numel(x);
	}
}

/* One step (see open_sgd); the result in *res, the parameters after it in
 * params (before it in before, when not NULL). 0 or -1. */
static int one_step(const char *dir, int global, int micro, int seed, struct step_result *res,
		    double *params, double *before)
{
	struct recipe r;
	struct trainer t;
	if (open_sgd(dir, global, micro, seed, &r, &t))
		return -1;
	if (before)
		read_params(&t, before);
	struct hug_error err = { 0 };
	int rc = trainer_step(&t, res, &err);
	if (rc)
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
	else
		read_params(&t, params);
	trainer_free(&t);
	recipe_free(&r);
	return rc;
}

static double max_diff(const double *a, const double *b, int n)
{
	double worst = 0;
	for (int i = 0; i < n; i++)
		worst = fmax(worst, fabs(a[i] - b[i]));
	return worst;
}

TEST(train_masked_loss_independent_of_micro_batches)
{
	const char *dir = masked_shards(8000);
	REQUIRE(dir);
	static double ref[N_PARAMS], p[N_PARAMS];
	struct step_result a, b;
	REQUIRE(one_step(dir, 8, 8, 1, &a, ref, NULL) == 0);
	printf("(8x1: loss %.6f, %lld targets", a.loss, (long long)a.target_tokens);
	CHECK(a.target_tokens > 0 && a.target_tokens < 8 * 32);
	const int micros[] = { 4, 2, 1 };
	for (int k = 0; k < 3; k++) {
		REQUIRE(one_step(dir, 8, micros[k], 1, &b, p, NULL) == 0);
		double dp = max_diff(ref, p, N_PARAMS);
		printf("; %dx%d: loss %.6f, |param diff| %.2g", micros[k], 8 / micros[k], b.loss, dp);
		CHECK(b.target_tokens == a.target_tokens);
		CHECK_NEAR(b.loss, a.loss, 1e-6);
		CHECK(dp <= 1e-6);
	}
	printf(") ");
	train_fixture_rmtree(dir);
}

/* The counted targets of draws 0 and 1 of the training order at `seed`. */
static int probe(const char *dir, int seed, int64_t c[2])
{
	struct recipe r;
	struct trainer t;
	if (open_sgd(dir, 1, 1, seed, &r, &t))
		return -1;
	struct hug_error err = { 0 };
	struct step_result res;
	int rc = 0;
	for (int i = 0; i < 2 && !rc; i++) {
		rc = trainer_step(&t, &res, &err);
		c[i] = res.target_tokens;
	}
	trainer_free(&t);
	recipe_free(&r);
	return rc;
}

/* Draw 0 counted, draw 1 all masked: the step over both (two micro-batches
 * of one row) equals the step over draw 0 alone. Draw 0 all masked: the
 * step is skipped and changes no parameter. */
TEST(train_all_masked_micro_batch_changes_nothing)
{
	const char *dir = masked_shards(8000);
	REQUIRE(dir);
	static double a[N_PARAMS], b[N_PARAMS], before[N_PARAMS];
	int seed_pair = 0, seed_empty = 0;
	for (int s = 1; s <= 60 && (!seed_pair || !seed_empty); s++) {
		int64_t c[2];
		REQUIRE(probe(dir, s, c) == 0);
		if (!seed_pair && c[0] > 0 && c[1] == 0)
			seed_pair = s;
		if (!seed_empty && c[0] == 0)
			seed_empty = s;
	}
	REQUIRE(seed_pair && seed_empty);
	struct step_result ra, rb;
	REQUIRE(one_step(dir, 2, 1, seed_pair, &ra, a, NULL) == 0);
	REQUIRE(one_step(dir, 1, 1, seed_pair, &rb, b, NULL) == 0);
	double dp = max_diff(a, b, N_PARAMS);
	printf("(seed %d: loss %.6f vs %.6f, %lld targets, |param diff| %.2g; ", seed_pair,
	       ra.loss, rb.loss, (long long)ra.target_tokens, dp);
	CHECK(ra.target_tokens == rb.target_tokens);
	CHECK_NEAR(ra.loss, rb.loss, 1e-6);
	CHECK(dp <= 1e-6);
	CHECK(!ra.skipped && !rb.skipped);
	REQUIRE(one_step(dir, 1, 1, seed_empty, &ra, a, before) == 0);
	printf("seed %d: all masked, skipped %d) ", seed_empty, ra.skipped);
	CHECK(ra.skipped && ra.target_tokens == 0);
	CHECK(max_diff(a, before, N_PARAMS) == 0);
	train_fixture_rmtree(dir);
}

/* tools/ref/make_sft_trainer_fixture.py: one step of transformers' Trainer
 * (SGD at lr 0.5, batch 2 x 2 accumulation, four rows of 9 tokens counting
 * 7, 4, 2 and 8 targets, loss normalised by num_items_in_batch) on
 * tests/fixtures/bloom-tiny-a. hug takes the same step from a shard of the
 * four rows (mask = labels != -100) with micro batch 2 and micro batch 1. */
#define SFT_FIXTURE "tests/fixtures/sft-trainer.safetensors"

/* Writes DIR/shard-00000.h5 with the fixture's rows. 0 or -1. */
static int sft_shard(const char *dir, const struct st_file *f)
{
	const struct st_tensor *ids = st_find(f, "input_ids"), *lab = st_find(f, "labels");
	if (!ids || !lab || ids->nbytes != 4 * 9 * 4 || lab->nbytes != ids->nbytes)
		return -1;
	int32_t tok[36], l[36];
	uint8_t mask[36];
	memcpy(tok, ids->data, sizeof(tok));
	memcpy(l, lab->data, sizeof(l));
	for (int i = 0; i < 36; i++)
		mask[i] = l[i] != -100;
	struct shard_meta meta = { .vocab_size = 97, .eos_id = 2 };
	snprintf(meta.tokenizer_hash, sizeof(meta.tokenizer_hash), "test");
	snprintf(meta.source, sizeof(meta.source), "sft-trainer");
	char path[128];
	snprintf(path, sizeof(path), "%s/shard-00000.h5", dir);
	struct shard_writer *w;
	struct hug_error err = { 0 };
	if (shard_writer_open(&w, path, &meta, true, &err))
		return -1;
	for (int r = 0; r < 4; r++)
		if (shard_writer_append(w, tok + 9 * r, mask + 9 * r, 9, &err)) {
			shard_writer_discard(w);
			return -1;
		}
	return shard_writer_close(w, &err);
}

/* The step with micro batch `micro` against the fixture: loss within
 * 1e-6 relative, parameters within 1e-6 relative to the largest update. */
static void sft_step(const char *dir, const struct st_file *f, int micro)
{
	char path[256], o[64];
	snprintf(path, sizeof(path), "%s/r.json", dir);
	FILE *rf = fopen(path, "w");
	if (!rf) {
		CHECK(rf != NULL);
		return;
	}
	fprintf(rf, "{\"model\": {\"from_pretrained\": \"tests/fixtures/bloom-tiny-a\"},\n"
		    " \"data\": {\"train\": [{\"path\": \"%s/shard-*.h5\"}], \"seq_len\": 8},\n"
		    " \"optim\": {\"name\": \"sgd\", \"lr\": 0.5, \"weight_decay\": 0, "
		    "\"grad_clip\": 0},\n"
		    " \"schedule\": {\"warmup_steps\": 0, \"decay\": \"constant\"},\n"
		    " \"batch\": {\"micro_batch_size\": 2, \"global_batch_size\": 4},\n"
		    " \"train\": {\"steps\": 1, \"out_dir\": \"%s/run\"}}\n", dir, dir);
	fclose(rf);
	snprintf(o, sizeof(o), "batch.micro_batch_size=%d", micro);
	const char *ov[] = { o };
	struct recipe r;
	struct trainer t;
	struct hug_error err = { 0 };
	if (recipe_load(path, ov, 1, 1, &r, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return;
	}
	if (trainer_init(&t, &r, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		recipe_free(&r);
		return;
	}
	/* the update's scale, to judge the parameter differences by */
	static double before[4096], after[4096], want[4096];
	double worst = 0, biggest = 0;
	struct step_result res;
	int n = model_params(&t.model)->n, ok = 1;
	double *saved[64] = { 0 };
	for (int i = 0; i < n && i < 64; i++) {
		struct tensor *p = model_params(&t.model)->items[i].t;
		saved[i] = hug_malloc((size_t)tensor_numel(p) * sizeof(double));
		tensor_read_f64(p, saved[i]);
	}
	CHECK(n <= 64);
	if (trainer_step(&t, &res, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		ok = 0;
	}
	for (int i = 0; ok && i < n && i < 64; i++) {
		struct tensor *p = model_params(&t.model)->items[i].t;
		char name[300];
		snprintf(name, sizeof(name), "param.%s", model_params(&t.model)->items[i].name);
		const struct st_tensor *ref = st_find(f, name);
		int64_t k = tensor_numel(p);
		if (!ref || ref->dtype != DT_F32 || (int64_t)ref->nbytes != k * 4 || k > 4096) {
			test_fail_at(__FILE__, __LINE__, "fixture tensor %s missing or of another size",
				     name);
			ok = 0;
			break;
		}
		tensor_read_f64(p, after);
		for (int64_t j = 0; j < k; j++) {
			float v;
			memcpy(&v, (const char *)ref->data + 4 * j, 4);
			want[j] = v;
			before[j] = saved[i][j];
			worst = fmax(worst, fabs(after[j] - want[j]));
			biggest = fmax(biggest, fabs(want[j] - before[j]));
		}
	}
	for (int i = 0; i < n && i < 64; i++)
		hug_free(saved[i]);
	const struct st_tensor *lt = st_find(f, "loss");
	double loss = 0;
	if (lt && lt->nbytes == 8)
		memcpy(&loss, lt->data, 8);
	printf("(micro %d: loss %.9f, Trainer %.9f, rel %.2g; %lld targets; max |param diff| "
	       "%.2g, largest update %.2g) ", micro, res.loss, loss,
	       fabs(res.loss - loss) / loss, (long long)res.target_tokens, worst, biggest);
	CHECK(res.target_tokens == 21);
	CHECK(fabs(res.loss - loss) <= 1e-6 * loss);
	CHECK(ok && biggest > 0.01 && worst <= 1e-6 * fmax(1.0, biggest));
	trainer_free(&t);
	recipe_free(&r);
}

TEST(train_sft_step_matches_hf_trainer)
{
	struct st_file f;
	struct hug_error err = { 0 };
	if (st_open(&f, SFT_FIXTURE, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return;
	}
	static char dir[64];
	snprintf(dir, sizeof(dir), "/tmp/hug-train-XXXXXX");
	REQUIRE(mkdtemp(dir));
	if (sft_shard(dir, &f)) {
		st_close(&f);
		test_fail_at(__FILE__, __LINE__, "%s: the rows did not make a shard", SFT_FIXTURE);
		return;
	}
	sft_step(dir, &f, 2);
	sft_step(dir, &f, 1);
	st_close(&f);
	train_fixture_rmtree(dir);
}

/* ---- under mpirun: data parallelism against one process ---- */

#define MPI_ENV                                                                          \
	"OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 "   \
	"ASAN_OPTIONS=detect_leaks=0 "

static bool can_mpirun(void)
{
#ifndef HUG_MPI
	return false;
#else
	return getenv("HUG_BIN") && system("command -v mpirun >/dev/null 2>&1") == 0;
#endif
}

/* `[mpirun -np N] hug train RECIPE --set train.out_dir=DIR/NAME EXTRA`;
 * the exit status. */
static int hug_train(int np, const char *dir, const char *name, const char *extra)
{
	char cmd[2048];
	const char *hug = getenv("HUG_BIN");
	snprintf(cmd, sizeof(cmd),
		 "%s%s%s train %s/r.json --set train.out_dir=%s/%s %s >>%s/%s.log 2>&1",
		 np > 1 ? MPI_ENV : "OMP_NUM_THREADS=1 ",
		 np > 1 ? (np == 2 ? "mpirun -np 2 --oversubscribe " : "mpirun -np 4 --oversubscribe ")
			: "",
		 hug, dir, dir, name, extra, dir, name);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define STEPS 3

/* From DIR/NAME/metrics.jsonl: the training losses, counted targets and
 * validation losses by step (1-based). The records found. */
static int metrics(const char *dir, const char *name, double loss[STEPS],
		   double tokens[STEPS], double valid[STEPS])
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s/metrics.jsonl", dir, name);
	char *text;
	struct hug_error err = { 0 };
	int found = 0;
	hug_json_init();
	if (fs_read_file(path, 1 << 24, &text, NULL, &err))
		return 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		cJSON *j = cJSON_Parse(line);
		cJSON *s = cJSON_GetObjectItem(j, "step");
		if (cJSON_IsNumber(s) && s->valueint >= 1 && s->valueint <= STEPS) {
			int k = s->valueint - 1;
			cJSON *l = cJSON_GetObjectItem(j, "loss"), *n = cJSON_GetObjectItem(j, "target_tokens"),
			      *v = cJSON_GetObjectItem(j, "valid_loss");
			if (cJSON_IsNumber(l) && cJSON_IsNumber(n)) {
				loss[k] = l->valuedouble;
				tokens[k] = n->valuedouble;
				found++;
			}
			if (cJSON_IsNumber(v)) {
				valid[k] = v->valuedouble;
				found++;
			}
		}
		cJSON_Delete(j);
	}
	hug_free(text);
	return found;
}

/* Run NAME against the one-process run "ref": losses, counted targets,
 * final weights and (with the same micro batch size: eval_batches counts
 * micro-batches) validation losses. */
static void compare_to_ref(const char *dir, const char *name, bool valid)
{
	double la[STEPS] = { 0 }, ta[STEPS] = { 0 }, va[STEPS] = { 0 };
	double lb[STEPS] = { 0 }, tb[STEPS] = { 0 }, vb[STEPS] = { 0 };
	CHECK(metrics(dir, "ref", la, ta, va) == 2 * STEPS);
	CHECK(metrics(dir, name, lb, tb, vb) == 2 * STEPS);
	double dl = 0, dv = 0, dt = 0;
	for (int s = 0; s < STEPS; s++) {
		dl = fmax(dl, fabs(la[s] - lb[s]));
		dv = fmax(dv, fabs(va[s] - vb[s]));
		dt = fmax(dt, fabs(ta[s] - tb[s]));
	}
	char x[512], y[512];
	snprintf(x, sizeof(x), "%s/ref/checkpoint-%d/model.safetensors", dir, STEPS);
	snprintf(y, sizeof(y), "%s/%s/checkpoint-%d/model.safetensors", dir, name, STEPS);
	double dp = train_fixture_file_diff(x, y);
	printf("    %s: loss %.6f (|diff| %.2g), valid %.6f (|diff| %.2g), targets %g (|diff| %g), "
	       "|param diff| %.2g\n", name, lb[STEPS - 1], dl, vb[STEPS - 1], dv, tb[STEPS - 1], dt,
	       dp);
	CHECK(dl <= 1e-6 && dt == 0 && dp <= 1e-6);
	if (valid)
		CHECK(dv <= 1e-6);
}

/* Masked data, SGD: one process 4x2 against one process 8x1, DP2 x 4x1,
 * DP2 x 2x2 and DP2 x 4x1 with ZeRO-1; validation over held-out samples (eval_batches 3: an odd
 * count, so the ranks' shares differ) and over a separate loader. */
TEST(mpi_train_masked_dp_matches_one_process)
{
	if (!can_mpirun())
		SKIP("no MPI build, mpirun or HUG_BIN (run through make test)");
	const char *dir = masked_shards(12000);
	REQUIRE(dir);
	char recipe[256];
	snprintf(recipe, sizeof(recipe), "%s/r.json", dir);
	FILE *f = fopen(recipe, "w");
	REQUIRE(f);
	fprintf(f, "{\"model\": {\"vocab_size\": 64, \"hidden_size\": 24, \"n_layer\": 2, "
		   "\"n_head\": 6, \"initializer_range\": 0.05},\n"
		   " \"data\": {\"train\": [{\"path\": \"%s/shard-*.h5\"}], \"seq_len\": 32, "
		   "\"valid_fraction\": 0.2},\n"
		   " \"optim\": {\"name\": \"sgd\", \"lr\": 0.5, \"weight_decay\": 0},\n"
		   " \"schedule\": {\"warmup_steps\": 0, \"decay\": \"constant\"},\n"
		   " \"batch\": {\"micro_batch_size\": 4, \"global_batch_size\": 8},\n"
		   " \"train\": {\"steps\": %d, \"log_every\": 1, \"eval_every\": 1, "
		   "\"eval_batches\": 3, \"keep_last\": 0}}\n", dir, STEPS);
	REQUIRE(fclose(f) == 0);
	printf("\n");
	REQUIRE(hug_train(1, dir, "ref", "") == 0);
	CHECK(hug_train(1, dir, "one-8x1", "--set batch.micro_batch_size=8") == 0);
	compare_to_ref(dir, "one-8x1", false);
	CHECK(hug_train(2, dir, "dp2-4x1", "") == 0);
	compare_to_ref(dir, "dp2-4x1", true);
	CHECK(hug_train(2, dir, "dp2-2x2", "--set batch.micro_batch_size=2") == 0);
	compare_to_ref(dir, "dp2-2x2", false);
	CHECK(hug_train(2, dir, "dp2-zero1", "--set parallel.zero=1") == 0);
	compare_to_ref(dir, "dp2-zero1", true);
	/* a separate validation loader (the same shards) */
	char valid[512];
	snprintf(valid, sizeof(valid), "--set 'data.valid=[{\"path\": \"%s/shard-*.h5\"}]'", dir);
	CHECK(hug_train(1, dir, "ref-valid", valid) == 0);
	CHECK(hug_train(2, dir, "dp2-valid", valid) == 0);
	double l[2][STEPS] = { { 0 } }, t[2][STEPS] = { { 0 } }, v[2][STEPS] = { { 0 } };
	CHECK(metrics(dir, "ref-valid", l[0], t[0], v[0]) == 2 * STEPS);
	CHECK(metrics(dir, "dp2-valid", l[1], t[1], v[1]) == 2 * STEPS);
	printf("    data.valid: valid %.6f (1 process) %.6f (DP2)\n", v[0][STEPS - 1],
	       v[1][STEPS - 1]);
	CHECK_NEAR(v[0][0], v[1][0], 1e-6);
	CHECK_NEAR(v[0][STEPS - 1], v[1][STEPS - 1], 1e-6);
	if (!test_failed_now())
		train_fixture_rmtree(dir);
}
