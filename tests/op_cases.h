/* op_cases.h: the test cases of the engine's ops, one table for every op of
 * the op list autograd/ops.def: for each case its inputs (shapes and kinds)
 * and a run function over them. A case belongs to op "name" when its name
 * is "name" or starts with "name_"; the few others (transpose, reshape,
 * composite) combine ops. tests/test_op_table.c checks every case's
 * gradients in f64 on the CPU and that every op has a case;
 * tests/test_cuda_ops.c compares every case on CUDA (f32 and bf16) with
 * the CPU. Adding an op adds its cases to op_cases.c. */
#ifndef HUG_TESTS_OP_CASES_H
#define HUG_TESTS_OP_CASES_H

#include <stdbool.h>
#include <stdint.h>

#include "../autograd/autograd.h"

#define OP_CASE_MAX_IN 5


enum in_kind {
	IN_NONE,    /* a NULL input (no bias, no mask...) */
	IN_FLOAT,   /* uniform in [-scale, scale) */
	IN_IDS,     /* i32 ids in [0, range) with repeats */
	IN_MASK,    /* i32 (B, T): full, left-padded, with a hole, empty */
	IN_TARGETS, /* i32 in [0, range), every 4th one -100; range 0: all -100 */
	IN_SLOPES,  /* the ALiBi slopes of shape[0] heads */
	IN_SEGS,    /* i32 (B, T) document ids: runs of 7 to 15 tokens */
};

struct in_spec {
	enum in_kind kind;
	int ndim;
	int64_t shape[4];
	bool grad;
	double scale;
	int64_t range;
};

struct op_case;
typedef struct tensor *(*run_fn)(struct ag_ctx *ctx, struct tensor **in,
				 const struct op_case *c);

struct op_case {
	const char *name;
	run_fn run;
	struct in_spec in[OP_CASE_MAX_IN];
	double tol_f32, tol_bf16;
	int ia, ib;      /* op parameters for run */
	double da;
	bool training;
	/* the f64 gradient check on the CPU (tests/test_op_table.c): its step
	 * (0: gradcheck's default), or none when the op is not differentiable
	 * at that precision (a rounding cast) */
	double gc_h;
	bool no_gradcheck;
};

extern const struct op_case op_cases[];
extern const int op_n_cases;

/* True when case c belongs to op `op` (see above). */
bool op_case_is_of(const struct op_case *c, const char *op);

/* Host tensor for spec s (input i of its case) in arena a, NULL for
 * IN_NONE: float inputs (values, slopes) of dtype float_dt (f32 or f64;
 * rounded to bf16-representable values when bf16_exact), ids, targets
 * and masks i32. Deterministic. */
struct tensor *op_case_input(struct arena *a, const struct in_spec *s, int i,
			     enum dtype float_dt, bool bf16_exact);

#endif
