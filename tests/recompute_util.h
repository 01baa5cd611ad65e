/* recompute_util.h: one training step of any model with a given
 * activation-recomputation mode, returning the bits of every gradient, so
 * that the tests of recomputation (tests/test_recompute.c, the CUDA and
 * mpirun ones) compare modes bit for bit. */
#ifndef HUG_TESTS_RECOMPUTE_UTIL_H
#define HUG_TESTS_RECOMPUTE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "../nn/model.h"
#include "../nn/param.h"

/* What a run of recompute_run measured. */
struct recompute_result {
	unsigned char *grads;  /* every gradient of `pt`, in table order, raw bytes */
	size_t bytes;
	double loss;           /* of the last step */
	uint64_t allocs_late;  /* hug allocations made by the steps after the first */
	size_t step_peak;      /* high-water bytes of the step arena */
	size_t scratch_peak;   /* high-water bytes of the recomputation scratch */
};

/* Zeroes the gradients of `pt`, then runs `steps` training steps of model m
 * (on its device) with ctx.recompute = mode, dropout on (seed 7, the RNG
 * offset running on over the steps), on a fixed batch of 2 x 9 tokens,
 * the second row padded: forward, the family's loss of the next tokens
 * (tensor-parallel models too), backward, gradients accumulated
 * over the steps. Fills *r (free r->grads with hug_free); 0, or -1 with
 * the context's message printed. */
int recompute_run(const struct model *m, const struct param_table *pt,
		  enum ag_recompute mode, int steps, struct recompute_result *r);

/* As recompute_run, each step's forward on the model_cast view of m in
 * float dtype dt (bf16 on CUDA: the mixed-precision step). */
int recompute_run_cast(const struct model *m, const struct param_table *pt,
		       enum ag_recompute mode, enum dtype dt, int steps,
		       struct recompute_result *r);

/* 0 when a and b hold the same bits; else the index+1 of the first
 * parameter of pt whose gradient differs (and its name in *name). */
int recompute_first_diff(const struct param_table *pt, const struct recompute_result *a,
			 const struct recompute_result *b, const char **name);

#endif
