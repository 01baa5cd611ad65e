/* gradcheck.h: a finite-difference gradient checker for the autograd ops.
 *
 * The caller supplies a build function that computes an output from a set
 * of input tensors (host leaves), plus the inputs. The checker draws a fixed
 * random weight tensor R shaped like the output and uses
 *
 *   L = sum(out * R)
 *
 * as the scalar objective. The analytic gradient dL/dx of every float input
 * that requires grad comes from ag_backward_from(ctx, out, R); the numeric
 * one from central differences (L(x + h) - L(x - h)) / 2h, each forward run
 * under no_grad in a scratch step arena that is reset every time. An element
 * passes when |analytic - numeric| <= atol + rtol * |numeric|.
 *
 * Inputs that are not float (i32 ids, masks) or do not require grad are
 * passed to every build unchanged and never perturbed. Inputs that require
 * grad must have been marked with tensor_set_requires_grad() (their .grad
 * buffer lives in the caller's arena); the checker zeroes those buffers
 * before the analytic pass and leaves the analytic gradient in them.
 *
 * Every build sees the same ctx->seed and ctx->rng_offset, so dropout draws
 * the same mask in every forward and can be checked like any other op. */
#ifndef HUG_TESTS_GRADCHECK_H
#define HUG_TESTS_GRADCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "../autograd/autograd.h"
#include "harness.h"

/* Computes the output from inputs[0..n_inputs) in ctx (recording or not, as
 * ctx says); returns NULL on error (with ctx->err set). Must be a pure
 * function of the inputs' values, ctx->seed, ctx->rng_offset and `user`. */
typedef struct tensor *(*gradcheck_build_fn)(struct ag_ctx *ctx,
					     struct tensor **inputs, void *user);

struct gradcheck_opts {
	double h;          /* step; 0 means 1e-6 */
	double atol;       /* 0 means 1e-7 */
	double rtol;       /* 0 means 1e-5 */
	uint64_t seed;     /* for R; 0 means a fixed default */
	bool training;     /* ctx->training during every build */
};

struct gradcheck_result {
	bool ok;
	int64_t n_checked;      /* elements compared */
	int worst_input;        /* -1 when nothing was compared */
	int64_t worst_index;    /* flat (row-major) index in that input */
	double worst_analytic;
	double worst_numeric;
	double worst_excess;    /* |a - n| - (atol + rtol |n|); > 0 fails */
	char msg[512];          /* why it failed, for the test report */
};

/* Runs the check (see above) and fills `res`. `opts` NULL takes every
 * default (training true). Returns 0 when every compared element is within
 * tolerance and at least one element was compared; -1 otherwise, with a
 * message in res->msg naming `name`, the worst element (input index, flat
 * index, analytic, numeric) or the autograd error. Allocates its scratch
 * arenas with hug_malloc and frees them before returning. */
int gradcheck(const char *name, gradcheck_build_fn build,
	      struct tensor **inputs, int n_inputs, void *user,
	      const struct gradcheck_opts *opts, struct gradcheck_result *res);

/* Test helper: runs gradcheck and fails the current test (at the caller's
 * file:line) with the report when it does not pass. */
#define CHECK_GRAD(name, build, inputs, n_inputs, user, opts)                  \
	do {                                                                   \
		struct gradcheck_result gc_res_;                               \
		if (gradcheck((name), (build), (inputs), (n_inputs), (user),   \
			      (opts), &gc_res_) != 0)                          \
			test_fail_at(__FILE__, __LINE__, "%s", gc_res_.msg);   \
	} while (0)

/* Fills a host tensor with deterministic uniform values in [lo, hi) drawn
 * from `seed` (any float dtype; strides respected). */
void gradcheck_fill_uniform(struct tensor *t, uint64_t seed, double lo,
			    double hi);

#endif
