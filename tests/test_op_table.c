/* test_op_table.c: every op of the op list (autograd/ops.def) has test
 * cases in tests/op_cases.c, and every case small enough passes a gradient
 * check in f64 on the CPU (tests/gradcheck.h). The tests are generated from
 * the op list, one op_table_gradcheck_<op> per op, so a new op is covered,
 * and fails until it has a case, without editing this file. The CUDA side
 * of the same cases is tests/test_cuda_ops.c (cuda_ops_<op>). */
#include <stdio.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "gradcheck.h"
#include "harness.h"
#include "op_cases.h"

/* Cases with more float elements than this to perturb are left to the
 * forward/backward comparisons (each element costs two forwards). */
#define GC_MAX_ELEMS 1300

static int64_t float_elems(const struct op_case *c)
{
	int64_t n = 0;
	for (int i = 0; i < OP_CASE_MAX_IN; i++) {
		const struct in_spec *s = &c->in[i];
		if (s->kind != IN_FLOAT || !s->grad)
			continue;
		int64_t e = 1;
		for (int d = 0; d < s->ndim; d++)
			e *= s->shape[d];
		n += e;
	}
	return n;
}

static struct tensor *build_case(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	const struct op_case *c = user;
	return c->run(ctx, in, c);
}

/* The f64 gradient check of case c on the CPU; false after reporting a
 * failure. */
static bool gradcheck_case(const struct op_case *c)
{
	struct arena model;
	arena_init(&model, "model", 0, NULL);
	struct tensor *in[OP_CASE_MAX_IN];
	for (int i = 0; i < OP_CASE_MAX_IN; i++) {
		in[i] = op_case_input(&model, &c->in[i], i, DT_F64, false);
		if (in[i] && c->in[i].grad)
			tensor_set_requires_grad(in[i], &model);
	}
	struct gradcheck_opts opts = { .h = c->gc_h, .training = c->training, .seed = 0 };
	struct gradcheck_result res;
	int rc = gradcheck(c->name, build_case, in, OP_CASE_MAX_IN, (void *)c, &opts, &res);
	if (rc)
		test_fail_at(__FILE__, __LINE__, "%s", res.msg);
	else
		printf("\n    %-30s %6lld elements checked", c->name, (long long)res.n_checked);
	arena_free(&model);
	return rc == 0;
}

/* Checks every small case of op `op`; fails when the op has no case, or
 * none that is gradient-checked. */
static void gradcheck_op(const char *op)
{
	int cases = 0, checked = 0;
	for (int i = 0; i < op_n_cases; i++) {
		const struct op_case *c = &op_cases[i];
		if (!op_case_is_of(c, op))
			continue;
		cases++;
		if (c->no_gradcheck || float_elems(c) > GC_MAX_ELEMS)
			continue;
		gradcheck_case(c);
		checked++;
	}
	printf("\n    ");
	if (!cases)
		test_fail_at(__FILE__, __LINE__, "op %s (autograd/ops.def) has no case in "
			     "tests/op_cases.c", op);
	else if (!checked)
		test_fail_at(__FILE__, __LINE__, "op %s has no case in tests/op_cases.c small "
			     "enough for the f64 gradient check (%d float elements at most)",
			     op, GC_MAX_ELEMS);
}

#define AG_OP(U, l, kind)                                                      \
	TEST(op_table_gradcheck_##l)                                           \
	{                                                                      \
		gradcheck_op(#l);                                              \
	}
#include "../autograd/ops.def"

/* The op table and the names: every op is named, once, and the names are
 * the ones the cases and the profiler use. */
TEST(op_table_names)
{
	for (int op = 0; op < AG_OP_COUNT; op++) {
		REQUIRE(ag_op_info[op].name && *ag_op_info[op].name);
		for (int o = 0; o < op; o++)
			CHECK(strcmp(ag_op_info[op].name, ag_op_info[o].name) != 0);
	}
	CHECK(!strcmp(ag_op_info[AG_OP_MATMUL].name, "matmul"));
	CHECK(!strcmp(ag_op_info[AG_OP_CROSS_ENTROPY].name, "cross_entropy"));
	CHECK(ag_op_info[AG_OP_VIEW].is_view && ag_op_info[AG_OP_TP_COPY].is_view);
	CHECK(!ag_op_info[AG_OP_TP_REDUCE].is_view && !ag_op_info[AG_OP_ATTENTION].is_view);
}
