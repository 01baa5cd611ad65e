/* bench_train.c: training-step throughput of a model on the CPU (BLOOM,
 * or another family with --arch): forward, backward, clipping and an AdamW
 * update on random tokens, the work `hug train` does per micro-batch.
 * Compare with tools/ref/bench_torch_train.py (PyTorch + transformers, same
 * shapes and thread count; bench/llama_cpu.sh runs the two alternately).
 *
 *   build/bin/bench_train [--hidden 192 --layers 4 --heads 6 --vocab 8192
 *                          --seq 128 --batch 8 --steps 20 --warmup 3]
 *                         [--arch llama --kv-heads 2 --ffn 1408]
 * --kv-heads and --ffn set num_key_value_heads and intermediate_size
 * (families that have them; 0: the family's default). --recompute
 * none|block|selective picks activation recomputation (recipe
 * train.activation_checkpointing); the step memory (the step arena's
 * high-water mark plus recomputation's scratch) is printed.
 * Threads: OMP_NUM_THREADS (and OPENBLAS_NUM_THREADS). HUG_PROFILE=1 adds the
 * time per op (autograd/profile.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../autograd/autograd.h"
#include "../autograd/checkpoint.h"
#include "../autograd/profile.h"
#include "../autograd/rng.h"
#include "../base/alloc.h"
#include "../nn/model.h"
#include "../optim/optimizer.h"
#include "bench_util.h"

/* The string after argv's "name", or def when absent. */
static const char *bench_str(int argc, char **argv, const char *name, const char *def)
{
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return def;
}

int main(int argc, char **argv)
{
	long h = bench_arg(argc, argv, "--hidden", 192), l = bench_arg(argc, argv, "--layers", 4);
	long nh = bench_arg(argc, argv, "--heads", 6), v = bench_arg(argc, argv, "--vocab", 8192);
	long t = bench_arg(argc, argv, "--seq", 128), b = bench_arg(argc, argv, "--batch", 8);
	long steps = bench_arg(argc, argv, "--steps", 20), warm = bench_arg(argc, argv, "--warmup", 3);
	long kv = bench_arg(argc, argv, "--kv-heads", 0), ffn = bench_arg(argc, argv, "--ffn", 0);
	const char *arch = bench_str(argc, argv, "--arch", model_families[0]->name);
	const char *rc = bench_str(argc, argv, "--recompute", "none");
	enum ag_recompute mode = !strcmp(rc, "block")     ? AG_RECOMPUTE_BLOCK :
				 !strcmp(rc, "selective") ? AG_RECOMPUTE_SELECTIVE :
							    AG_RECOMPUTE_NONE;
	if (mode == AG_RECOMPUTE_NONE && strcmp(rc, "none")) {
		fprintf(stderr, "bench_train: --recompute: expected none, block or selective, "
			"got \"%s\"\n", rc);
		return 2;
	}
	const struct model_family *fam = model_family_find(arch);
	struct model_config c;
	struct model_sizes sz = { v, h, (int)l, (int)nh };
	struct hug_error err = { 0 };
	if (!fam) {
		char names[256];
		fprintf(stderr, "bench_train: --arch: expected one of %s, got \"%s\"\n",
			model_family_names(names, sizeof(names)), arch);
		return 2;
	}
	model_config_make(&c, fam, &sz);
	if ((kv && model_config_set(&c, "num_key_value_heads", (double)kv)) ||
	    (ffn && model_config_set(&c, "intermediate_size", (double)ffn))) {
		fprintf(stderr, "bench_train: --kv-heads / --ffn: not settings of %s\n", arch);
		return 2;
	}
	if (model_config_validate(&c, "bench", &err)) {
		fprintf(stderr, "%s\n", err.msg);
		return 2;
	}
	struct model m;
	model_init(&m, &c, DT_F32, true, NULL, NULL);
	model_init_weights(&m, 1);
	struct optim_config oc = optim_config_adamw();
	struct optimizer opt;
	optim_init(&opt, &oc, model_params(&m));
	struct arena step, data;
	arena_init(&step, "step", 0, NULL);
	arena_init(&data, "data", 0, NULL);
	struct ag_ctx ctx;
	ag_ctx_init(&ctx, &step);
	ctx.recompute = mode;
	struct tensor *ids = tensor_new(&data, DT_I32, TENSOR_SHAPE(b, t));
	struct tensor *tgt = tensor_new(&data, DT_I32, TENSOR_SHAPE(b, t));
	double t0 = 0, *step_s = hug_malloc(sizeof(double) * (size_t)(steps > 0 ? steps : 1));
	for (long s = 0; s < warm + steps; s++) {
		double s0 = bench_now();
		if (s == warm) {
			t0 = bench_now();
			ag_profile_reset(); /* HUG_PROFILE=1: time the measured steps only */
		}
		for (long i = 0; i < b * t; i++) {
			((int32_t *)ids->data)[i] = (int32_t)(rng_u64(7, (uint64_t)(s * b * t + i)) % (uint64_t)v);
			((int32_t *)tgt->data)[i] = (int32_t)(rng_u64(8, (uint64_t)(s * b * t + i)) % (uint64_t)v);
		}
		ag_ctx_reset(&ctx);
		struct tensor *logits = model_forward(&ctx, &m, ids, NULL);
		struct tensor *loss = ag_cross_entropy(&ctx, logits, tgt, -100);
		if (ag_backward(&ctx, loss)) {
			fprintf(stderr, "%s\n", ctx.err.msg);
			return 1;
		}
		double p0 = ag_profile_start(DEV_CPU);
		optim_clip_grads(&opt, optim_grad_norm(&opt), 1.0);
		optim_step(&opt, 1e-4);
		optim_zero_grad(&opt);
		ag_profile_stop("optimizer", DEV_CPU, p0);
		if (s >= warm)
			step_s[s - warm] = bench_now() - s0;
	}
	double dt = bench_now() - t0;
	double params = (double)model_config_param_count(&c);
	printf("hug bench_train: %s, %ld params, batch %ld x seq %ld, %ld steps in %.2f s: "
	       "%.2f steps/s, %.0f tokens/s (threads: OMP_NUM_THREADS=%s)\n",
	       arch, (long)params, b, t, steps, dt, (double)steps / dt,
	       (double)(steps * b * t) / dt, getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "default");
	printf("step memory (recompute %s): step arena %.1f MiB + recomputation scratch %.1f MiB\n",
	       rc, (double)step.high_water / 1048576.0,
	       (double)ag_recompute_scratch_peak(&ctx) / 1048576.0);
	if (steps > 0) {
		qsort(step_s, (size_t)steps, sizeof(double), bench_cmp_double);
		double med = steps % 2 ? step_s[steps / 2] : 0.5 * (step_s[steps / 2 - 1] + step_s[steps / 2]);
		printf("hug bench_train steps: fastest %.1f ms, median %.1f ms, median/fastest %.2f\n",
		       1e3 * step_s[0], 1e3 * med, med / step_s[0]);
	}
	hug_free(step_s);
	ag_profile_report(stdout);
	ag_ctx_free(&ctx);
	optim_free(&opt);
	model_free(&m);
	arena_free(&step);
	arena_free(&data);
	return 0;
}
