/* test_family_recipes.c: the shipped recipes of the model families after
 * BLOOM, end to end at tiny size with `hug train` as a user runs it:
 * recipes/llama-tiny-pretrain.json and recipes/qwen2-tiny-pretrain.json
 * from scratch, and recipes/qwen2-tiny-lora-sft.json on the random Qwen2
 * fixture tests/fixtures/qwen2-tiny (the checkpoint the pretraining run
 * makes here is already at the tiny corpus's plateau after a few steps,
 * where LoRA has nothing left to learn; loading it is checked instead). Each keeps its own keys (family, optimizer,
 * schedule, LoRA targets) and gets --set overrides only for size and data:
 * the counting shards of tests/train_fixture.h (vocabulary 64), hidden 32,
 * 2 layers, 4 heads, sequences of 32, a few steps. Checked: exit status 0,
 * the checkpoint's config.json names the family, the loss falls, and the
 * LoRA run prints PEFT's trainable-parameter line and saves an adapter.
 * Needs HUG_BIN (set by make test). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/fs.h"
#include "harness.h"
#include "train_fixture.h"

#define STEPS 24

/* The overrides that shrink a recipe to the fixture: data, batch, steps,
 * out_dir (size keys are added by the caller for a model from scratch). */
static void small(char *buf, size_t n, const char *shards, const char *out_dir)
{
	snprintf(buf, n,
		 "--set 'data.train=[{\"path\": \"%s/shard-*.h5\"}]' --set data.tokenizer=null "
		 "--set data.valid_fraction=0.05 --set data.seq_len=32 --set model.max_seq_len=32 "
		 "--set batch.micro_batch_size=4 --set batch.global_batch_size=8 "
		 "--set train.steps=%d --set train.save_every=%d --set train.eval_every=%d "
		 "--set train.log_every=1 --set train.sample_tokens=0 "
		 "--set schedule.warmup_steps=2 --set train.out_dir=%s",
		 shards, STEPS, STEPS, STEPS, out_dir);
}

/* Loss of the first and last training records of run_dir/metrics.jsonl;
 * false when there are none. */
static bool first_last_loss(const char *run_dir, double *first, double *last)
{
	char *path = fs_join(run_dir, "metrics.jsonl"), *text = NULL;
	struct hug_error err = { 0 };
	int found = 0;
	if (fs_read_file(path, 1 << 24, &text, NULL, &err) == 0) {
		for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
			char *l = strstr(line, "\"loss\":");
			double v;
			if (strncmp(line, "{\"step\":", 8) || !l || sscanf(l + 7, "%lf", &v) != 1)
				continue;
			if (!found++)
				*first = v;
			*last = v;
		}
	}
	hug_free(text);
	hug_free(path);
	return found >= 2;
}

/* config.json of checkpoint `ckpt` holds "model_type": "<type>". */
static bool config_names(const char *ckpt, const char *type)
{
	char path[1024], want[64];
	snprintf(path, sizeof(path), "%s/config.json", ckpt);
	snprintf(want, sizeof(want), "\"model_type\": \"%s\"", type);
	char *text = test_read_file(path, NULL);
	bool ok = text && strstr(text, want);
	hug_free(text);
	return ok;
}

/* Trains recipe `recipe` from scratch at tiny size into dir/<name>. */
static void pretrain(const char *dir, const char *recipe, const char *name, const char *type)
{
	static char out[1 << 16];
	char set[2048], run[512], ckpt[600];
	snprintf(run, sizeof(run), "%s/%s", dir, name);
	small(set, sizeof(set), dir, run);
	int rc = train_fixture_hug(out, sizeof(out), "train %s %s --set model.vocab_size=64 "
				   "--set model.hidden_size=32 --set model.n_layer=2 "
				   "--set model.n_head=4", recipe, set);
	if (rc != 0) {
		test_fail_at(__FILE__, __LINE__, "%s: exit %d:\n%s", recipe, rc, out);
		return;
	}
	snprintf(ckpt, sizeof(ckpt), "%s/checkpoint-%d", run, STEPS);
	CHECK(config_names(ckpt, type));
	double first = 0, last = 0;
	CHECK(first_last_loss(run, &first, &last));
	if (!(last < first - 0.3))
		test_fail_at(__FILE__, __LINE__, "%s: loss %.4f -> %.4f: not learning", recipe,
			     first, last);
	printf("(%s: loss %.3f -> %.3f) ", name, first, last);
}

TEST(family_recipes_run_end_to_end)
{
	const char *shards = train_fixture_shards(1, 40000);
	REQUIRE(shards);
	char dir[256];
	snprintf(dir, sizeof(dir), "%s", shards);
	pretrain(dir, "recipes/llama-tiny-pretrain.json", "llama", "llama");
	pretrain(dir, "recipes/qwen2-tiny-pretrain.json", "qwen2", "qwen2");

	/* the Qwen2 checkpoint loads as a Hugging Face directory */
	static char out[1 << 16];
	char set[2048], run[512], base[600], ckpt[600];
	snprintf(base, sizeof(base), "%s/qwen2/checkpoint-%d", dir, STEPS);
	CHECK(train_fixture_hug(out, sizeof(out), "info %s", base) == 0);
	CHECK(strstr(out, "num_key_value_heads") != NULL);

	/* LoRA SFT */
	snprintf(run, sizeof(run), "%s/qwen2-lora", dir);
	small(set, sizeof(set), dir, run);
	int rc = train_fixture_hug(out, sizeof(out), "train recipes/qwen2-tiny-lora-sft.json %s "
				   "--set 'model.from_pretrained=\"tests/fixtures/qwen2-tiny\"'", set);
	if (rc != 0) {
		test_fail_at(__FILE__, __LINE__, "qwen2-tiny-lora-sft: exit %d:\n%s", rc, out);
	} else {
		CHECK(strstr(out, "trainable params: ") && strstr(out, "trainable%: "));
		snprintf(ckpt, sizeof(ckpt), "%s/checkpoint-%d", run, STEPS);
		CHECK(fs_exists_in(ckpt, "adapter_config.json") &&
		      fs_exists_in(ckpt, "adapter_model.safetensors"));
		double first = 0, last = 0;
		CHECK(first_last_loss(run, &first, &last));
		if (!(last < first - 0.3))
			test_fail_at(__FILE__, __LINE__, "qwen2-tiny-lora-sft: loss %.4f -> %.4f: not "
				     "learning", first, last);
		printf("(qwen2-lora: loss %.3f -> %.3f) ", first, last);
	}
	train_fixture_rmtree(dir);
}
