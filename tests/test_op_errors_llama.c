/* test_op_errors_llama.c: the Llama families' ops (ag_rmsnorm, ag_rope,
 * ag_silu, ag_swiglu) refuse inputs they cannot take with a message that
 * names the op and the inputs, and the error is sticky. */
#include <string.h>

#include "../autograd/autograd.h"
#include "ag_env.h"
#include "harness.h"

static struct tensor *filled(struct ag_env *e, enum dtype dt, int ndim, const int64_t *shape)
{
	struct tensor *t = tensor_new(&e->model, dt, ndim, shape);
	tensor_fill(t, dt == DT_I32 ? 1 : 0.5);
	return t;
}

#define T(e, dt, ...) filled((e), (dt), TENSOR_SHAPE(__VA_ARGS__))

/* The op failed, and its message holds `a` and `b` (b may be NULL). */
static void expect_error_at(int line, struct ag_env *e, const void *result, const char *a,
			    const char *b)
{
	if (result || !ag_failed(&e->ctx)) {
		test_fail_at(__FILE__, line, "expected an error containing \"%s\"", a);
		return;
	}
	if (!strstr(e->ctx.err.msg, a) || (b && !strstr(e->ctx.err.msg, b)))
		test_fail_at(__FILE__, line, "message \"%s\" lacks \"%s\" or \"%s\"", e->ctx.err.msg,
			     a, b ? b : "");
	ag_ctx_reset(&e->ctx);
}

#define EXPECT_ERROR(e, result, a, b) expect_error_at(__LINE__, (e), (result), (a), (b))

TEST(op_error_rmsnorm)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *x = T(&e, DT_F32, 2, 3, 8);
	EXPECT_ERROR(&e, ag_rmsnorm(&e.ctx, x, T(&e, DT_F32, 7), 1e-6), "rmsnorm: w must be (C)",
		     "[7]");
	EXPECT_ERROR(&e, ag_rmsnorm(&e.ctx, x, T(&e, DT_F64, 8), 1e-6), "rmsnorm: dtypes differ",
		     "f64");
	EXPECT_ERROR(&e, ag_rmsnorm(&e.ctx, x, NULL, 0), "rmsnorm: eps must be", NULL);
	EXPECT_ERROR(&e, ag_rmsnorm(&e.ctx, T(&e, DT_I32, 2, 8), NULL, 1e-6), "rmsnorm: x must be f32 or f64",
		     NULL);
	CHECK(ag_rmsnorm(&e.ctx, x, NULL, 1e-6) != NULL);
	ag_env_free(&e);
}

TEST(op_error_rope)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *x = T(&e, DT_F32, 2, 3, 5, 8), *pos = T(&e, DT_I32, 2, 5);
	EXPECT_ERROR(&e, ag_rope(&e.ctx, x, pos, T(&e, DT_F32, 4)), "rope: inv_freq must be f64",
		     "f32");
	EXPECT_ERROR(&e, ag_rope(&e.ctx, x, pos, T(&e, DT_F64, 8)), "rope: x must be (B, H, T, D)",
		     "[8]");
	EXPECT_ERROR(&e, ag_rope(&e.ctx, T(&e, DT_F32, 2, 3, 5, 7), pos, T(&e, DT_F64, 3)),
		     "D even", "[2, 3, 5, 7]");
	EXPECT_ERROR(&e, ag_rope(&e.ctx, x, T(&e, DT_I32, 2, 4), T(&e, DT_F64, 4)), "pos (B, T)",
		     "[2, 4]");
	EXPECT_ERROR(&e, ag_rope(&e.ctx, x, T(&e, DT_F32, 2, 5), T(&e, DT_F64, 4)),
		     "rope: pos must be i32", NULL);
	CHECK(ag_rope(&e.ctx, x, pos, T(&e, DT_F64, 4)) != NULL);
	ag_env_free(&e);
}

TEST(op_error_swiglu)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *g = T(&e, DT_F32, 3, 8);
	EXPECT_ERROR(&e, ag_swiglu(&e.ctx, g, T(&e, DT_F32, 3, 7)), "swiglu: gate and up must have the same shape",
		     "[3, 7]");
	EXPECT_ERROR(&e, ag_swiglu(&e.ctx, g, T(&e, DT_F64, 3, 8)), "swiglu: dtypes differ", NULL);
	EXPECT_ERROR(&e, ag_silu(&e.ctx, T(&e, DT_I32, 3)), "silu: x must be f32 or f64", NULL);
	/* sticky: an earlier error makes the next op fail without running */
	EXPECT_ERROR(&e, ag_swiglu(&e.ctx, g, NULL), "swiglu: input up is NULL", NULL);
	ag_swiglu(&e.ctx, g, NULL);
	CHECK(ag_silu(&e.ctx, g) == NULL && ag_failed(&e.ctx));
	ag_env_free(&e);
}
