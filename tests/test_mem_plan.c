/* test_mem_plan.c: the memory plan (train/mem_plan.c) against what hug
 * allocates: the step arena's high-water mark after one training step
 * (activations, their gradients, logits: the part the plan computes op by
 * op), and the peak RSS of `hug train` child processes at three shapes. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../train/mem_plan.h"
#include "../train/recipe.h"
#include "../train/trainer.h"
#include "harness.h"
#include "peft_fixture.h"
#include "test_cuda_util.h"
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

/* On the GPU (CUDA, or its emulator): no CPU attention scratch; in bf16
 * the activations are 2 bytes and every weight has a bf16 copy and a bf16
 * gradient of that copy in the step arena. Full training and LoRA. */
TEST(cuda_mem_plan_step_arena_matches_the_tape)
{
	CUDA_TEST_BEGIN();
	const char *dir = train_fixture_setup(20000, NULL, ", \"steps\": 20");
	REQUIRE(dir);
	static const char *const shapes[][6] = {
		{ "device=\"cuda\"", "precision=\"f32\"", "model.vocab_size=512",
		  "model.hidden_size=64", "data.seq_len=128", "model.n_head=8" },
		{ "device=\"cuda\"", "precision=\"bf16\"", "model.vocab_size=512",
		  "model.hidden_size=64", "data.seq_len=128", "model.n_head=8" },
		{ "device=\"cuda\"", "precision=\"bf16\"", "model.arch=\"llama\"",
		  "model.hidden_size=64", "data.seq_len=96", "model.num_key_value_heads=2" },
	};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		int64_t m, p;
		step_memory(dir, shapes[i], 6, &m, &p);
		printf("  %s %s: step arena %lld bytes, planned %lld (%+.2f%%)\n", shapes[i][1],
		       shapes[i][2], (long long)m, (long long)p, 100.0 * (double)(p - m) / (double)m);
		CHECK(m > 0);
		CHECK(p > 0.98 * (double)m && p < 1.02 * (double)m);
	}
	train_fixture_rmtree(dir);
	const char *ldir = peft_train_setup("{\"r\": 4, \"alpha\": 8}", 20, NULL);
	REQUIRE(ldir);
	const char *ov[] = { "device=\"cuda\"", "precision=\"bf16\"" };
	int64_t m, p;
	step_memory(ldir, ov, 2, &m, &p);
	printf("  LoRA bf16: step arena %lld bytes, planned %lld (%+.2f%%)\n", (long long)m,
	       (long long)p, 100.0 * (double)(p - m) / (double)m);
	CHECK(p > 0.97 * (double)m && p < 1.03 * (double)m);
	train_fixture_rmtree(ldir);
}

/* LoRA: the frozen base keeps no weight gradients, the adapters add their
 * products; with and without adapter dropout. */
TEST(mem_plan_step_arena_matches_the_tape_lora)
{
	static const char *const peft[] = {
		"{\"r\": 4, \"alpha\": 8, \"target_modules\": [\"query_key_value\", "
		"\"dense_h_to_4h\"]}",
		"{\"r\": 8, \"alpha\": 8, \"dropout\": 0.1}",
	};
	for (int i = 0; i < 2; i++) {
		const char *dir = peft_train_setup(peft[i], 20, NULL);
		REQUIRE(dir);
		int64_t m, p;
		step_memory(dir, NULL, 0, &m, &p);
		printf("  LoRA %d: step arena %lld bytes, planned %lld (%+.2f%%)\n", i,
		       (long long)m, (long long)p, 100.0 * (double)(p - m) / (double)m);
		CHECK(m > 0);
		CHECK(p > 0.97 * (double)m && p < 1.03 * (double)m);
		train_fixture_rmtree(dir);
	}
}

/* Runs `$HUG_BIN train recipe --set ...` (overrides ov) as a child, output
 * to `log`; its peak RSS in bytes (wait4's ru_maxrss), or -1 when it
 * failed. */
static int64_t child_peak_rss(const char *recipe, const char *const *ov, int n_ov,
			      const char *log)
{
	const char *argv[40];
	int n = 0;
	argv[n++] = getenv("HUG_BIN");
	argv[n++] = "train";
	argv[n++] = recipe;
	const char *fixed[] = { "schedule.warmup_steps=0", "train.steps=2", "train.eval_batches=1",
				"train.tensorboard=false" };
	for (int i = 0; i < 4; i++) {
		argv[n++] = "--set";
		argv[n++] = fixed[i];
	}
	for (int i = 0; i < n_ov && n < 37; i++) {
		argv[n++] = "--set";
		argv[n++] = ov[i];
	}
	argv[n] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int status;
	struct rusage ru;
	if (pid < 0 || wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return -1;
	return (int64_t)ru.ru_maxrss * 1024;
}

/* The "process overhead" hug train printed at start-up into log, in
 * bytes, or -1. */
static int64_t logged_overhead(const char *log)
{
	char *text = test_read_file(log, NULL);
	const char *at = text ? strstr(text, "process overhead") : NULL;
	double v = -1;
	char unit[8] = "";
	if (at && sscanf(at + strlen("process overhead"), " %lf %7s", &v, unit) == 2)
		v *= !strcmp(unit, "GiB") ? 1 << 30 : !strcmp(unit, "MiB") ? 1 << 20
			: !strcmp(unit, "KiB") ? 1 << 10 : 1;
	hug_free(text);
	return (int64_t)v;
}

/* The plan of DIR/recipe.json with overrides ov (one process). */
static int64_t planned_peak(const char *dir, const char *const *ov, int n_ov)
{
	char path[512];
	struct recipe r;
	struct hug_error err = { 0 };
	const char *all[16] = { "schedule.warmup_steps=0", "train.steps=2" };
	for (int i = 0; i < n_ov && i < 14; i++)
		all[i + 2] = ov[i];
	snprintf(path, sizeof(path), "%s/recipe.json", dir);
	if (recipe_load(path, all, n_ov + 2, 1, &r, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return -1;
	}
	struct mem_layout l;
	struct mem_plan p;
	mem_layout_of_recipe(&r, 1, &l);
	mem_plan_compute(&r.model, &l, &p);
	recipe_free(&r);
	return p.peak;
}

/* Peak RSS of `hug train` at three shapes against the plan plus the
 * process's fixed overhead: the binary, its libraries, OpenBLAS's and
 * OpenMP's buffers, HDF5, the loader, measured once as the peak RSS of a
 * run of a model too small to count (its own plan subtracted). The shapes
 * are chosen so the plan is most of the peak (the check means something)
 * and a step takes well under a second. */
TEST(mem_plan_peak_rss_of_training_runs)
{
	if (!getenv("HUG_BIN"))
		SKIP("HUG_BIN not set (run through make test)");
	const char *dir = train_fixture_setup(40000, NULL, ", \"steps\": 2");
	if (!dir) {
		CHECK(dir != NULL);
		return;
	}
	char recipe[512], log[512];
	snprintf(recipe, sizeof(recipe), "%s/recipe.json", dir);
	snprintf(log, sizeof(log), "%s/train.log", dir);
	static const char *const idle[] = {
		"model.vocab_size=64", "model.hidden_size=8", "model.n_layer=1", "model.n_head=1",
		"data.seq_len=8", "batch.micro_batch_size=1", "batch.global_batch_size=1",
	};
	/* one shape each where logits, activations, parameters dominate */
	static const char *const shapes[][7] = {
		{ "model.vocab_size=32768", "model.hidden_size=32", "model.n_layer=2",
		  "model.n_head=4", "data.seq_len=256", "batch.micro_batch_size=3",
		  "batch.global_batch_size=3" },
		{ "model.vocab_size=512", "model.hidden_size=128", "model.n_layer=8",
		  "model.n_head=4", "data.seq_len=512", "batch.micro_batch_size=3",
		  "batch.global_batch_size=3" },
		{ "model.vocab_size=8192", "model.hidden_size=384", "model.n_layer=3",
		  "model.n_head=6", "data.seq_len=64", "batch.micro_batch_size=2",
		  "batch.global_batch_size=2" },
	};
	char rmrun[600];
	snprintf(rmrun, sizeof(rmrun), "rm -rf '%s/run'", dir);
	CHECK(system(rmrun) == 0);
	/* the idle run: its start-up line names the resident memory besides
	 * the model (binary, libraries with their relocations, thread stacks,
	 * BLAS buffers, loader); its peak (at load or exit) bounds any run's
	 * from below */
	int64_t idle_peak = child_peak_rss(recipe, idle, 7, log);
	int64_t overhead = logged_overhead(log);
	printf("  process overhead %.1f MiB; peak RSS of the smallest run %.1f MiB\n",
	       (double)overhead / 1048576, (double)idle_peak / 1048576);
	CHECK(idle_peak > 0 && overhead > 0);
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		CHECK(system(rmrun) == 0);
		int64_t m = child_peak_rss(recipe, shapes[i], 7, log);
		int64_t plan = planned_peak(dir, shapes[i], 7);
		double pred = (double)(plan + overhead);
		if (pred < (double)idle_peak)
			pred = (double)idle_peak;
		printf("  shape %zu: peak RSS %.1f MiB, planned %.1f MiB + overhead = %.1f MiB "
		       "(%+.1f%%)\n", i, (double)m / 1048576, (double)plan / 1048576,
		       pred / 1048576, 100.0 * (pred - (double)m) / (double)m);
		CHECK(m > 0);
		CHECK(plan > overhead);                /* the plan is most of what is tested */
		CHECK(pred > 0.85 * (double)m && pred < 1.15 * (double)m);
	}
	train_fixture_rmtree(dir);
}

/* The layout terms move the way their definitions say, on a preset. */
TEST(mem_plan_layout_terms)
{
	struct model_config cfg;
	struct mem_layout l;
	struct mem_plan base, p;
	struct hug_error err = { 0 };
	REQUIRE(model_config_preset("bloom-7b1", &cfg) == 0);
	mem_layout_default(&l);
	l.dp = 4;
	l.seq_len = 2048;
	l.bf16 = l.cuda = true;
	l.attention = MEM_ATTN_EXACT; /* the base keeps the probabilities */
	REQUIRE(mem_layout_validate(&cfg, &l, &err) == 0);
	mem_plan_compute(&cfg, &l, &base);
	CHECK(base.params_total == 7069016064LL);
	CHECK(base.params == base.params_total * 4);
	CHECK(base.optim == base.params_total * 8);
	CHECK(base.tokens_per_step == 4 * 2048);
	l.zero = 1;
	mem_plan_compute(&cfg, &l, &p);
	CHECK(p.optim == (base.params_total + 3) / 4 * 8 && p.grads == base.grads);
	l.zero = 2;
	mem_plan_compute(&cfg, &l, &p);
	CHECK(p.grads == (base.params_total + 3) / 4 * 4 && p.params == base.params);
	l.zero = 3;
	mem_plan_compute(&cfg, &l, &p);
	CHECK(p.params == (base.params_total + 3) / 4 * 4);
	CHECK(p.params_cast < base.params_cast / 10); /* two blocks, not the model */
	l.zero = 0;
	l.tp = 2;
	mem_plan_compute(&cfg, &l, &p);
	CHECK(p.params_rank > base.params_total / 2 && p.params_rank < base.params_total / 2 +
	      base.params_total / 100); /* norms and biases are whole on each rank */
	CHECK(p.attn_probs == base.attn_probs / 2); /* half the heads */
	l.tp = 1;
	l.attention = MEM_ATTN_FLASH;
	mem_plan_compute(&cfg, &l, &p);
	CHECK(p.attn_probs == 0 && p.activations < base.activations - base.attn_probs * 99 / 100);
	l.attention = MEM_ATTN_EXACT;
	l.recompute = MEM_RECOMPUTE_SELECTIVE;
	mem_plan_compute(&cfg, &l, &p);
	CHECK(p.activations < base.activations && p.activations_none == base.activations);
	int64_t selective = p.activations;
	l.recompute = MEM_RECOMPUTE_BLOCK;
	mem_plan_compute(&cfg, &l, &p);
	CHECK(p.activations < selective);
	CHECK(p.flops_per_step > base.flops_per_step); /* the forward runs twice */
	/* BLOOM-176B as BigScience ran it: 70 layers on 12 stages, the
	 * embedding counted as a layer on the first and last */
	REQUIRE(model_config_preset("bloom-176b", &cfg) == 0);
	CHECK(model_config_param_count(&cfg) == 176247271424LL);
	mem_layout_default(&l);
	l.dp = 8;
	l.tp = 4;
	l.pp = 12;
	l.zero = 1;
	l.micro_batch = 2;
	l.seq_len = 2048;
	l.accumulation = 128;
	REQUIRE(mem_layout_validate(&cfg, &l, &err) == 0);
	mem_plan_compute(&cfg, &l, &p);
	CHECK(p.layers == 5 || p.layers == 6);
	CHECK(p.tokens_per_step == 2048LL * 2048); /* BigScience's 2048 sequences */
	l.pp = 71;
	CHECK(mem_layout_validate(&cfg, &l, &err) == -1 && strstr(err.msg, "pipeline"));
}

TEST(plan_cli_presets_recipes_and_errors)
{
	if (!getenv("HUG_BIN"))
		SKIP("HUG_BIN not set (run through make test)");
	char out[8192];
	CHECK(train_fixture_hug(out, sizeof(out), "plan --preset bloom-7b1 --world 8 --tp 2 "
				"--zero 3 --dtype bf16 --seq 2048") == 0);
	CHECK(strstr(out, "7069016064 parameters") != NULL);
	CHECK(strstr(out, "8 GPUs/processes = 4 data x 2 tensor x 1 pipeline; ZeRO-3") != NULL);
	CHECK(strstr(out, "optimizer state") && strstr(out, "sharded over dp"));
	CHECK(strstr(out, "KV cache (generation)") && strstr(out, "FLOPs per step"));
	CHECK(train_fixture_hug(out, sizeof(out), "plan --preset llama-3.1-8b --lora 16") == 0);
	CHECK(strstr(out, "LoRA rank 16") != NULL);
	CHECK(train_fixture_hug(out, sizeof(out), "plan --preset bloom-7b1 --zero 4") == 2);
	CHECK(strstr(out, "hug plan: zero: expected a stage 0, 1, 2 or 3, got 4") != NULL);
	CHECK(train_fixture_hug(out, sizeof(out), "plan --preset nope") == 2);
	CHECK(strstr(out, "--preset: unknown model \"nope\"") != NULL);
	CHECK(train_fixture_hug(out, sizeof(out), "plan --preset bloom-560m --world 6 --tp 4") == 2);
	CHECK(strstr(out, "--world 6 is not a multiple of --tp 4") != NULL);
	CHECK(train_fixture_hug(out, sizeof(out), "plan --preset bloom-560m --recompute all") == 2);
	CHECK(strstr(out, "--recompute: expected none, block or selective") != NULL);
	CHECK(train_fixture_hug(out, sizeof(out), "plan") == 2);
	CHECK(strstr(out, "usage: hug plan") != NULL);
	/* a recipe: the same numbers as the module's */
	const char *dir = train_fixture_setup(4000, NULL, ", \"steps\": 20");
	REQUIRE(dir);
	CHECK(train_fixture_hug(out, sizeof(out), "plan %s/recipe.json --recompute block", dir) == 0);
	CHECK(strstr(out, "recompute block") && strstr(out, "activations (no recompute)"));
	CHECK(strstr(out, "micro batch 4 x 32 tokens, accumulation 2") != NULL);
	train_fixture_rmtree(dir);
}

/* hug train's start-up summary (issue 22): model, parameters, layout,
 * tokens per step, steps, the memory plan, the command that resumes. */
TEST(train_prints_what_it_will_do)
{
	if (!getenv("HUG_BIN"))
		SKIP("HUG_BIN not set (run through make test)");
	const char *dir = train_fixture_setup(4000, NULL, ", \"steps\": 12");
	REQUIRE(dir);
	char out[16384];
	CHECK(train_fixture_hug(out, sizeof(out), "train %s/recipe.json --set optim.lr=0.002",
				dir) == 0);
	CHECK(strstr(out, "hug train: model BLOOM (bloom), 27.6 K parameters: 27,584 trainable of "
			  "27,584 (100%), full training\n") != NULL);
	CHECK(strstr(out, "hug train: layout 1 data x 1 tensor x 1 pipeline, ZeRO-0; 256 tokens "
			  "per step (8 sequences x 32), 12 steps, 3,072 tokens in all") != NULL);
	CHECK(strstr(out, "hug train: memory per rank (1 x 1 x 1 = dp x tp x pp, ZeRO-0, f32") != NULL);
	CHECK(strstr(out, "hug train:   activations ") != NULL);
	CHECK(strstr(out, "hug train:   process overhead ") != NULL);
	CHECK(strstr(out, "hug train:   peak (training) ") != NULL);
	char want[1024];
	snprintf(want, sizeof(want), "hug train: resume with: hug train %s/recipe.json --set "
		 "optim.lr=0.002 --resume\n", dir);
	CHECK(strstr(out, want) != NULL);
	train_fixture_rmtree(dir);
}
