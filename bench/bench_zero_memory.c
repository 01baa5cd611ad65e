/* bench_zero_memory.c: per-rank memory of the training state under each
 * ZeRO level. Under mpirun, builds the trainer of a recipe (as `hug train`
 * does, without its checkpoints and evaluation), runs a few steps, and
 * prints for every rank the growth of the resident set over what the
 * process held before the trainer existed (the peak during the steps, the
 * resident set now and after set-up, the peak of the set-up itself):
 * parameters, gradients, optimizer state and communication buffers, plus
 * the (small) activations of the recipe's micro-batch.
 *
 *   mpirun -np 2 build/bin/bench_zero_memory RECIPE [STEPS] [--set key=value ...]
 *
 * Host memory only (the CPU backend); on a GPU the device memory is what
 * ZeRO saves, which this does not see. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/json.h"
#include "../parallel/comm.h"
#include "../train/trainer.h"

/* A field of /proc/self/status in KiB ("VmHWM", "VmRSS"), or -1. */
static long status_kib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':')
			v = atol(line + n + 1);
	if (f)
		fclose(f);
	return v;
}

int main(int argc, char **argv)
{
	struct parallel par;
	struct hug_error err = { 0 };
	struct recipe r;
	struct trainer t;
	if (argc < 2) {
		fprintf(stderr, "usage: bench_zero_memory RECIPE [STEPS] [--set key=value ...]\n");
		return 2;
	}
	int steps = argc > 2 && argv[2][0] != '-' ? atoi(argv[2]) : 3;
	const char *ov[32];
	int n_ov = 0;
	for (int i = 2; i + 1 < argc && n_ov < 32; i++)
		if (!strcmp(argv[i], "--set"))
			ov[n_ov++] = argv[++i];
	hug_json_init();
	if (parallel_init(&par, &err) ||
	    recipe_load(argv[1], ov, n_ov, par.world_size, &r, &err) ||
	    parallel_set_layout(&par, r.tensor_parallel, &err)) {
		fprintf(stderr, "bench_zero_memory: %s\n", err.msg);
		return 1;
	}
	long base = status_kib("VmRSS");
	if (trainer_init_parallel(&t, &r, &par, &err)) {
		fprintf(stderr, "bench_zero_memory: %s\n", err.msg);
		return 1;
	}
	long after_init = status_kib("VmRSS"), init_peak = status_kib("VmHWM");
	/* the peak of the steps alone: Linux resets VmHWM to VmRSS on "5" */
	FILE *cr = fopen("/proc/self/clear_refs", "w");
	if (cr) {
		fputs("5", cr);
		fclose(cr);
	}
	double loss = 0;
	for (int s = 0; s < steps; s++) {
		struct step_result res;
		if (trainer_step(&t, &res, &err)) {
			fprintf(stderr, "bench_zero_memory: %s\n", err.msg);
			return 1;
		}
		loss = res.loss;
	}
	double mine[5] = { status_kib("VmHWM") - base, status_kib("VmRSS") - base,
			   after_init - base, init_peak - base,
			   (double)(optim_state_bytes(&t.opt) >> 10) };
	double *all = malloc(sizeof(mine) * (size_t)par.world_size);
	comm_allgather(&par.world, mine, all, 5, DT_F64);
	if (parallel_is_main(&par)) {
		printf("bench_zero_memory: %s, parallel.zero %d, tensor %d x data %d, %d steps, "
		       "last loss %.6f\n", argv[1], r.zero, par.tp, par.dp, steps, loss);
		for (int k = 0; k < par.world_size; k++)
			printf("  rank %d: steps' peak +%.1f MiB, now +%.1f MiB, after set-up "
			       "+%.1f MiB, set-up's peak +%.1f MiB (optimizer state %.1f MiB)\n",
			       k, all[5 * k] / 1024.0, all[5 * k + 1] / 1024.0,
			       all[5 * k + 2] / 1024.0, all[5 * k + 3] / 1024.0,
			       all[5 * k + 4] / 1024.0);
	}
	free(all);
	trainer_free(&t);
	recipe_free(&r);
	parallel_finalize(&par);
	return 0;
}
