/* test_nonfinite_load.c: no NaN/Inf gets in or out through a file. A
 * weight file with one NaN is refused, naming the tensor, by hug eval and
 * hug generate, by from_pretrained, by resume (weights and optimizer
 * state) and by adapter loading; a safetensors writer refuses a
 * non-finite tensor (so checkpoints and adapters never hold one); hug eval
 * turns a non-finite loss into an error instead of invalid JSON. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "../io/hf_checkpoint.h"
#include "bloom_util.h"
#include "../io/safetensors.h"
#include "../peft/lora_io.h"
#include "../train/checkpoint.h"
#include "../train/recipe.h"
#include "../train/trainer.h"
#include "harness.h"
#include "train_fixture.h"

/* Copies directory `from` into a new /tmp/hug-nfl-* directory (to[64]). */
static bool copy_dir(const char *from, char *to)
{
	strcpy(to, "/tmp/hug-nfl-XXXXXX");
	if (!mkdtemp(to))
		return false;
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cp -r '%s'/. '%s'/", from, to);
	return system(cmd) == 0;
}

/* Overwrites element 1 of the first f32 tensor of `file` whose name
 * contains `part` with v; its full name goes to name[256]. */
static bool poison(const char *file, const char *part, float v, char *name)
{
	struct st_file f;
	struct hug_error err = { 0 };
	if (st_open(&f, file, &err))
		return false;
	long off = -1;
	for (int i = 0; i < f.n && off < 0; i++)
		if (strstr(f.tensors[i].name, part) && f.tensors[i].dtype == DT_F32 &&
		    f.tensors[i].nbytes >= 8) {
			off = (long)((const char *)f.tensors[i].data - (const char *)f.map) + 4;
			snprintf(name, 256, "%s", f.tensors[i].name);
		}
	st_close(&f);
	int fd = off < 0 ? -1 : open(file, O_WRONLY);
	bool ok = fd >= 0 && pwrite(fd, &v, 4, off) == 4;
	if (fd >= 0)
		close(fd);
	return ok;
}

static bool names_tensor(const char *msg, const char *name)
{
	return strstr(msg, name) && strstr(msg, "NaN or infinite");
}

TEST(nonfinite_load_eval_generate_from_pretrained_refuse_nan_weight)
{
	char dir[64], file[128], name[256], cmd[1024], out[4096];
	REQUIRE(copy_dir("tests/fixtures/bloom-tiny-a", dir));
	snprintf(file, sizeof(file), "%s/model.safetensors", dir);
	REQUIRE(poison(file, "h.1.self_attention.query_key_value.weight", NAN, name));
	struct bloom_model m;
	struct hug_error err = { 0 };
	CHECK(hf_bloom_load(dir, DT_F32, true, &m, &err) == -1); /* from_pretrained, resume */
	CHECK(names_tensor(err.msg, name));
	if (getenv("HUG_BIN")) {
		char in[128];
		snprintf(in, sizeof(in), "%s/in.json", dir);
		FILE *f = fopen(in, "w");
		REQUIRE(f);
		fputs("[[1,5,9,20]]", f);
		fclose(f);
		snprintf(cmd, sizeof(cmd), "%s eval --model %s --input %s", getenv("HUG_BIN"), dir, in);
		CHECK(test_run_command(cmd, out, sizeof(out)) != 0);
		CHECK(names_tensor(out, name));
		snprintf(cmd, sizeof(cmd), "%s generate --model %s --prompt-ids 1,5",
			 getenv("HUG_BIN"), dir);
		CHECK(test_run_command(cmd, out, sizeof(out)) != 0);
		CHECK(names_tensor(out, name));
	}
	train_fixture_rmtree(dir);
}

TEST(nonfinite_eval_loss_is_an_error_not_json)
{
	if (!getenv("HUG_BIN"))
		SKIP("HUG_BIN not set (run through make test)");
	char dir[64], file[128], name[256], in[128], cmd[1024], out[4096];
	REQUIRE(copy_dir("tests/fixtures/bloom-tiny-a", dir));
	snprintf(file, sizeof(file), "%s/model.safetensors", dir);
	/* finite, but the logits overflow */
	REQUIRE(poison(file, "ln_f.weight", 3e38f, name));
	snprintf(in, sizeof(in), "%s/in.json", dir);
	FILE *f = fopen(in, "w");
	REQUIRE(f);
	fputs("[[1,5,9,20,3,44],[7,7,8,2]]", f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s eval --model %s --input %s", getenv("HUG_BIN"), dir, in);
	CHECK(test_run_command(cmd, out, sizeof(out)) == 1);
	CHECK(strstr(out, "\"loss\"") == NULL && strstr(out, "{") == NULL); /* no JSON */
	CHECK(strstr(out, "not finite") != NULL);
	train_fixture_rmtree(dir);
}

TEST(nonfinite_load_adapter_refuses_nan)
{
	char dir[64], file[128], name[256];
	REQUIRE(copy_dir("tests/fixtures/peft/bloom-tiny-a-lora", dir));
	snprintf(file, sizeof(file), "%s/adapter_model.safetensors", dir);
	REQUIRE(poison(file, "lora_A", INFINITY, name));
	struct bloom_model m;
	struct lora_model lm;
	struct hug_error err = { 0 };
	REQUIRE(hf_bloom_load("tests/fixtures/bloom-tiny-a", DT_F32, false, &m, &err) == 0);
	CHECK(lora_load(&lm, BLOOM_M(&m), dir, false, &err) == -1);
	CHECK(names_tensor(err.msg, name));
	bloom_model_free(&m);
	train_fixture_rmtree(dir);
}

/* A trained-for-two-steps checkpoint of the tiny fixture; 0 or -1. */
static int make_checkpoint(const char **dir, struct recipe *r, struct trainer *t, char **ckpt)
{
	*dir = train_fixture_shards(1, 20000);
	char glob[512], path[512], run[512];
	snprintf(glob, sizeof(glob), "%s/shard-*.h5", *dir);
	snprintf(path, sizeof(path), "%s/recipe.json", *dir);
	snprintf(run, sizeof(run), "%s/run", *dir);
	struct hug_error err = { 0 };
	if (train_fixture_recipe(path, glob, run, NULL, ", \"steps\": 20", NULL) ||
	    train_fixture_open(*dir, NULL, 0, r, t))
		return -1;
	struct step_result res;
	if (trainer_step(t, &res, &err) || trainer_step(t, &res, &err) ||
	    checkpoint_save(t, NULL, ckpt, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return -1;
	}
	return 0;
}

TEST(nonfinite_resume_refuses_nan_weight_or_moment)
{
	const char *dir;
	struct recipe r;
	struct trainer t;
	char *ckpt = NULL, file[600], name[256];
	REQUIRE(make_checkpoint(&dir, &r, &t, &ckpt) == 0);
	struct hug_error err = { 0 };
	cJSON *hist = NULL;
	REQUIRE(checkpoint_load(&t, ckpt, &hist, &err) == 0); /* intact: loads */
	cJSON_Delete(hist);
	hist = NULL;
	snprintf(file, sizeof(file), "%s/optimizer.safetensors", ckpt);
	REQUIRE(poison(file, "exp_avg_sq", NAN, name));
	CHECK(checkpoint_load(&t, ckpt, &hist, &err) == -1);
	CHECK(names_tensor(err.msg, name));
	cJSON_Delete(hist);
	hist = NULL;
	snprintf(file, sizeof(file), "%s/model.safetensors", ckpt);
	REQUIRE(poison(file, "dense_h_to_4h.weight", NAN, name));
	err = (struct hug_error){ 0 };
	CHECK(checkpoint_load(&t, ckpt, &hist, &err) == -1);
	CHECK(names_tensor(err.msg, name));
	cJSON_Delete(hist);
	hug_free(ckpt);
	trainer_free(&t);
	recipe_free(&r);
	train_fixture_rmtree(dir);
}

TEST(nonfinite_checkpoint_save_refuses_nan_moment)
{
	const char *dir;
	struct recipe r;
	struct trainer t;
	char *ckpt = NULL;
	REQUIRE(make_checkpoint(&dir, &r, &t, &ckpt) == 0);
	char *latest = checkpoint_latest(r.out_dir);
	REQUIRE(latest);
	struct step_result res;
	struct hug_error err = { 0 };
	REQUIRE(trainer_step(&t, &res, &err) == 0);
	const struct optim_slot *s = &t.opt.slots[1];
	((float *)s->v->data)[0] = INFINITY;
	char *path = NULL;
	CHECK(checkpoint_save(&t, NULL, &path, &err) == -1);
	char want[300];
	snprintf(want, sizeof(want), "exp_avg_sq.%s", s->param->name);
	CHECK(names_tensor(err.msg, want));
	char *now = checkpoint_latest(r.out_dir);
	CHECK(now && !strcmp(now, latest)); /* the previous one stays the newest */
	hug_free(now);
	hug_free(latest);
	hug_free(path);
	hug_free(ckpt);
	trainer_free(&t);
	recipe_free(&r);
	train_fixture_rmtree(dir);
}
