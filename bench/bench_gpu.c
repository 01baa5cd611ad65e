/* bench_gpu.c: training throughput of a BLOOM model on one GPU in bf16
 * mixed precision: f32 master weights and AdamW state on the device, the
 * weights cast to bf16 on the tape every step, forward, loss and backward
 * in bf16 (f32 statistics), the gradients cast back to the f32 masters,
 * clipping and an AdamW update. Reports tokens/s and MFU as one JSON line,
 * to compare with tools/ref/bench_torch_gpu.py (PyTorch + transformers'
 * BloomForCausalLM under bf16 autocast, same shapes); bench/bench_gpu.sh
 * runs both.
 *
 *   build/bin/bench_gpu [--hidden 1024 --layers 24 --heads 16 --vocab 250880
 *                        --seq 2048 --batch 1 --steps 10 --warmup 2]
 *
 * The defaults are bloom-560m's shape. MFU counts 6 N + 12 L C T flops per
 * token (N parameters, the tied lm_head counted once; L layers, C hidden,
 * T sequence) against HUG_PEAK_TFLOPS (default 989, the H100/H200 SXM
 * dense bf16 peak). With HUG_PROFILE=1 the time per op and phase of the
 * measured steps goes to stderr (each measurement waits for the GPU, so
 * the run itself is slower; bench_gpu.sh does a separate profiled run). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../autograd/autograd.h"
#include "../autograd/profile.h"
#include "../autograd/rng.h"
#include "../base/alloc.h"
#include "../nn/model.h"
#include "../optim/optimizer.h"
#include "bench_util.h"

#ifdef HUG_CUDA
#include "../autograd/cuda/cuda_api.h"
#endif

#ifndef HUG_CUDA
int main(void)
{
	fprintf(stderr, "bench_gpu: built without CUDA (nvcc was not found)\n");
	return 2;
}
#else

int main(int argc, char **argv)
{
	long h = bench_arg(argc, argv, "--hidden", 1024), l = bench_arg(argc, argv, "--layers", 24);
	long nh = bench_arg(argc, argv, "--heads", 16), v = bench_arg(argc, argv, "--vocab", 250880);
	long t = bench_arg(argc, argv, "--seq", 2048), b = bench_arg(argc, argv, "--batch", 1);
	long steps = bench_arg(argc, argv, "--steps", 10), warm = bench_arg(argc, argv, "--warmup", 2);
	const char *peak_env = getenv("HUG_PEAK_TFLOPS");
	double peak = (peak_env ? atof(peak_env) : 989.0) * 1e12;
	struct hug_error err = { 0 };
	struct model_config c;
	struct model_sizes sz = { v, h, (int)l, (int)nh };
	model_config_make(&c, model_families[0], &sz); /* the default family */
	if (model_config_validate(&c, "bench_gpu", &err) || hug_cuda_init(0, &err)) {
		fprintf(stderr, "bench_gpu: %s\n", err.msg);
		return 2;
	}
	char dev_name[256] = "?";
	hug_cuda_device_name(0, dev_name, sizeof(dev_name));

	/* weights initialised on the host, then moved */
	struct model hm, dm, bm = { 0 };
	model_init(&hm, &c, DT_F32, false, NULL, NULL);
	model_init_weights(&hm, 1);
	model_to_device(&dm, &hm, hug_cuda_allocator(), true);
	model_free(&hm);
	/* the trainer's optimizer: AdamW with its state on the GPU */
	struct optimizer opt;
	struct optim_config oc = optim_config_adamw();
	optim_init(&opt, &oc, model_params(&dm));

	/* random tokens, fixed for the run */
	struct arena data, hdata, step;
	arena_init(&data, "data", 0, hug_cuda_allocator());
	arena_init(&hdata, "hdata", 0, NULL);
	arena_init(&step, "step", 0, hug_cuda_allocator());
	struct tensor *hids = tensor_new(&hdata, DT_I32, TENSOR_SHAPE(b, t));
	int32_t *idv = hids->data;
	for (long i = 0; i < b * t; i++)
		idv[i] = (int32_t)(rng_u64(7, (uint64_t)i) % (uint64_t)v);
	struct tensor *ids = tensor_new(&data, DT_I32, TENSOR_SHAPE(b, t));
	tensor_transfer(ids, hids);
	struct ag_ctx ctx;
	ag_ctx_init(&ctx, &step);
	ctx.training = true;

	double t0 = 0, loss_last = NAN;
	for (long s = 0; s < warm + steps; s++) {
		if (s == warm) {
			hug_cuda_synchronize();
			t0 = bench_now();
			ag_profile_reset();
		}
		model_cast(&ctx, &dm, DT_BF16, &bm);
		struct tensor *logits = model_forward(&ctx, &bm, ids, NULL);
		struct tensor *loss = model_lm_loss(&ctx, logits, ids);
		if (!loss || ag_backward(&ctx, loss)) {
			fprintf(stderr, "bench_gpu: step %ld: %s\n", s + 1, ctx.err.msg);
			return 1;
		}
		double p0 = ag_profile_start(DEV_CUDA);
		optim_clip_grads(&opt, optim_grad_norm(&opt), 1.0);
		optim_step(&opt, 1e-4);
		optim_zero_grad(&opt);
		ag_profile_stop("optimizer", DEV_CUDA, p0);
		if (s == warm + steps - 1)
			loss_last = tensor_item(loss);
		ag_ctx_reset(&ctx);
	}
	hug_cuda_synchronize();
	double dt = bench_now() - t0;
	double tokens = (double)steps * (double)b * (double)t;
	double n_params = (double)model_config_param_count(&c);
	double flops_per_token = model_config_flops_per_token(&c, t);
	double tps = tokens / dt;
	printf("{\"impl\": \"hug\", \"device\": \"%s\", \"params\": %.0f, \"batch\": %ld, "
	       "\"seq\": %ld, \"steps\": %ld, \"step_ms\": %.1f, \"tokens_per_s\": %.0f, "
	       "\"mfu\": %.4f, \"peak_tflops\": %.0f, \"loss\": %.4f, \"step_arena_mib\": %.0f}\n",
	       dev_name, n_params, b, t, steps, 1e3 * dt / (double)steps, tps,
	       tps * flops_per_token / peak, peak / 1e12, loss_last,
	       (double)step.high_water / (1 << 20));
	ag_profile_report(stderr);
	optim_free(&opt);
	arena_free(&step);
	arena_free(&hdata);
	arena_free(&data);
	model_view_free(&bm);
	model_free(&dm);
	return 0;
}
#endif
