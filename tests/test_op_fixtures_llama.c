/* test_op_fixtures_llama.c: the ops of the Llama families (ag_rmsnorm,
 * ag_rope, ag_silu, ag_swiglu) against transformers' own modules
 * (tools/ref/make_llama_op_fixtures.py -> tests/fixtures/
 * llama_ops.safetensors): forward and every gradient in f64 (against
 * float64 references, 1e-12) and f32 (1e-5 against the same), the f32
 * forward against the stock float32 modules (1e-6), RMSNorm against a
 * value worked by hand, QK-norm on a strided (B, H, T, D) view, RoPE with
 * position ids that follow padding and packed documents, and the bf16
 * RMSNorm on CUDA against the stock bfloat16 LlamaRMSNorm. Errors are
 * max|diff| / max(1, max|ref|). */
#include <math.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../base/alloc.h"
#include "../io/safetensors.h"
#include "harness.h"
#include "op_fixture.h"
#include "test_cuda_util.h"

#ifdef HUG_CUDA
#include "../autograd/cuda/cuda_api.h"
#endif

#define LLAMA_FIXTURE "tests/fixtures/llama_ops.safetensors"

#define TOL_F64 1e-12
#define TOL_F32 1e-5
#define TOL_STOCK_F32 1e-6 /* f32 forward against transformers' f32 modules */

/* ---- RMSNorm ---- */

/* x = (2, -2, 2, -2), eps = 5: mean(x^2) + eps = 9, so xhat = x / 3 and,
 * with w = (3, 1.5, -3, 0.75), y = (2, -1, -2, -0.5), exactly. The
 * gradient of sum(y * dy) with dy = (1, 0, 0, 0): g = dy w = (3, 0, 0, 0),
 * mean(g xhat) = 3 (2/3) / 4 = 0.5, dx = (g - xhat 0.5) / 3 =
 * (3 - 1/3, 1/3, -1/3, 1/3) / 3 = (8/9, 1/9, -1/9, 1/9); dw = dy xhat =
 * (2/3, 0, 0, 0). */
TEST(op_fixture_rmsnorm_hand)
{
	static const double want_y[4] = { 2, -1, -2, -0.5 };
	static const double want_dx[4] = { 8.0 / 9, 1.0 / 9, -1.0 / 9, 1.0 / 9 };
	for (int k = 0; k < 2; k++) {
		enum dtype dt = k ? DT_F32 : DT_F64;
		double tol = k ? 1e-7 : 1e-15;
		struct arena a, step;
		struct ag_ctx ctx;
		arena_init(&a, "test", 0, NULL);
		arena_init(&step, "step", 0, NULL);
		ag_ctx_init(&ctx, &step);
		struct tensor *x = tensor_new(&a, dt, TENSOR_SHAPE(1, 4));
		struct tensor *w = tensor_new(&a, dt, TENSOR_SHAPE(4));
		struct tensor *dy = tensor_new(&a, dt, TENSOR_SHAPE(1, 4));
		tensor_write_f64(x, (const double[]){ 2, -2, 2, -2 });
		tensor_write_f64(w, (const double[]){ 3, 1.5, -3, 0.75 });
		tensor_write_f64(dy, (const double[]){ 1, 0, 0, 0 });
		tensor_set_requires_grad(x, &a);
		tensor_set_requires_grad(w, &a);
		struct tensor *y = ag_rmsnorm(&ctx, x, w, 5.0);
		REQUIRE(y && !ag_backward_from(&ctx, y, dy));
		double got[4], gx[4], gw[4];
		tensor_read_f64(y, got);
		tensor_read_f64(x->grad, gx);
		tensor_read_f64(w->grad, gw);
		for (int i = 0; i < 4; i++) {
			CHECK_NEAR(got[i], want_y[i], tol);
			CHECK_NEAR(gx[i], want_dx[i], tol);
			CHECK_NEAR(gw[i], i == 0 ? 2.0 / 3 : 0.0, tol);
		}
		arena_free(&step);
		arena_free(&a);
	}
}

/* `pre` "rmsnorm" (x (..., C)) or "qknorm" (x (B, T, H, D), normalised
 * over D as a (B, H, T, D) view). */
static void run_rmsnorm(enum dtype dt, const char *pre)
{
	struct op_fx x;
	char key[64];
	if (!op_fx_init(&x, LLAMA_FIXTURE, dt, dt == DT_F64 ? TOL_F64 : TOL_F32))
		return;
	bool heads = !strcmp(pre, "qknorm");
#define K(name) (snprintf(key, sizeof(key), "%s.%s", pre, name), key)
	struct tensor *in = op_fx_leaf(&x, K("x"));
	struct tensor *w = op_fx_leaf(&x, K("w"));
	struct tensor *eps = op_fx_load_as(&x, K("eps"), DT_F64);
	struct tensor *dy = op_fx_load_as(&x, K("dy"), dt);
	if (!in || !w || !eps || !dy)
		goto out;
	struct tensor *xin = heads ? ag_permute(&x.ctx, in, (const int[]){ 0, 2, 1, 3 }) : in;
	struct tensor *y = ag_rmsnorm(&x.ctx, xin, w, *(double *)eps->data);
	if (!op_fx_ok(&x, "rmsnorm forward"))
		goto out;
	op_fx_compare(&x, "rmsnorm y", y, K("y"), x.tol);
	if (dt == DT_F32)
		op_fx_compare(&x, "rmsnorm y (stock f32)", y, K("y_f32"), TOL_STOCK_F32);
	ag_backward_from(&x.ctx, y, dy);
	if (!op_fx_ok(&x, "rmsnorm backward"))
		goto out;
	op_fx_compare(&x, "rmsnorm dx", in->grad, K("dx"), x.tol);
	op_fx_compare(&x, "rmsnorm dw", w->grad, K("dw"), x.tol);
#undef K
out:
	op_fx_free(&x);
}

TEST(op_fixture_rmsnorm_f64) { run_rmsnorm(DT_F64, "rmsnorm"); }
TEST(op_fixture_rmsnorm_f32) { run_rmsnorm(DT_F32, "rmsnorm"); }
TEST(op_fixture_qknorm_f64) { run_rmsnorm(DT_F64, "qknorm"); }
TEST(op_fixture_qknorm_f32) { run_rmsnorm(DT_F32, "qknorm"); }

/* ---- RoPE ---- */

static void run_rope(enum dtype dt)
{
	struct op_fx x;
	if (!op_fx_init(&x, LLAMA_FIXTURE, dt, dt == DT_F64 ? TOL_F64 : TOL_F32))
		return;
	struct tensor *in = op_fx_leaf(&x, "rope.x");
	struct tensor *pos = op_fx_load_as(&x, "rope.pos", DT_I32);
	struct tensor *inv = op_fx_load_as(&x, "rope.inv_freq", DT_F64);
	struct tensor *dy = op_fx_load_as(&x, "rope.dy", dt);
	if (!in || !pos || !inv || !dy)
		goto out;
	struct tensor *y = ag_rope(&x.ctx, in, pos, inv);
	if (!op_fx_ok(&x, "rope forward"))
		goto out;
	op_fx_compare(&x, "rope y", y, "rope.y", x.tol);
	if (dt == DT_F32)
		op_fx_compare(&x, "rope y (stock f32)", y, "rope.y_f32", TOL_STOCK_F32);
	ag_backward_from(&x.ctx, y, dy);
	if (op_fx_ok(&x, "rope backward"))
		op_fx_compare(&x, "rope dx", in->grad, "rope.dx", x.tol);
out:
	op_fx_free(&x);
}

TEST(op_fixture_rope_f64) { run_rope(DT_F64); }
TEST(op_fixture_rope_f32) { run_rope(DT_F32); }

/* The fixture's positions follow padding (row 1 left-padded by 2) and
 * packed documents (row 2 restarts at 0), so a rope that ignored pos and
 * used t would fail the tests above; this pins what they hold. */
TEST(op_fixture_rope_positions)
{
	struct op_fx x;
	if (!op_fx_init(&x, LLAMA_FIXTURE, DT_F64, TOL_F64))
		return;
	struct tensor *pos = op_fx_load_as(&x, "rope.pos", DT_I32);
	if (pos) {
		REQUIRE(pos->ndim == 2 && pos->shape[0] == 3 && pos->shape[1] == 7);
		const int32_t *p = pos->data;
		static const int32_t want[3][7] = { { 0, 1, 2, 3, 4, 5, 6 },
						    { 0, 0, 0, 1, 2, 3, 4 },
						    { 0, 1, 2, 0, 1, 2, 3 } };
		for (int i = 0; i < 21; i++)
			CHECK(p[i] == want[i / 7][i % 7]);
	}
	op_fx_free(&x);
}

/* ---- SiLU and SwiGLU ---- */

static void run_swiglu(enum dtype dt)
{
	struct op_fx x;
	if (!op_fx_init(&x, LLAMA_FIXTURE, dt, dt == DT_F64 ? TOL_F64 : TOL_F32))
		return;
	struct tensor *g = op_fx_leaf(&x, "swiglu.gate");
	struct tensor *u = op_fx_leaf(&x, "swiglu.up");
	struct tensor *dy = op_fx_load_as(&x, "swiglu.dy", dt);
	if (!g || !u || !dy)
		goto out;
	struct tensor *y = ag_swiglu(&x.ctx, g, u);
	if (!op_fx_ok(&x, "swiglu forward"))
		goto out;
	op_fx_compare(&x, "swiglu y", y, "swiglu.y", x.tol);
	if (dt == DT_F32)
		op_fx_compare(&x, "swiglu y (stock f32)", y, "swiglu.y_f32", TOL_STOCK_F32);
	ag_backward_from(&x.ctx, y, dy);
	if (!op_fx_ok(&x, "swiglu backward"))
		goto out;
	op_fx_compare(&x, "swiglu dgate", g->grad, "swiglu.dgate", x.tol);
	op_fx_compare(&x, "swiglu dup", u->grad, "swiglu.dup", x.tol);
out:
	op_fx_free(&x);
}

static void run_silu(enum dtype dt)
{
	struct op_fx x;
	if (!op_fx_init(&x, LLAMA_FIXTURE, dt, dt == DT_F64 ? TOL_F64 : TOL_F32))
		return;
	struct tensor *g = op_fx_leaf(&x, "swiglu.gate");
	struct tensor *dy = op_fx_load_as(&x, "swiglu.dy", dt);
	if (!g || !dy)
		goto out;
	struct tensor *y = ag_silu(&x.ctx, g);
	if (!op_fx_ok(&x, "silu forward"))
		goto out;
	op_fx_compare(&x, "silu y", y, "swiglu.silu_y", x.tol);
	ag_backward_from(&x.ctx, y, dy);
	if (op_fx_ok(&x, "silu backward"))
		op_fx_compare(&x, "silu dx", g->grad, "swiglu.silu_dx", x.tol);
out:
	op_fx_free(&x);
}

TEST(op_fixture_swiglu_f64) { run_swiglu(DT_F64); }
TEST(op_fixture_swiglu_f32) { run_swiglu(DT_F32); }
TEST(op_fixture_silu_f64) { run_silu(DT_F64); }
TEST(op_fixture_silu_f32) { run_silu(DT_F32); }

/* ---- bf16 RMSNorm on CUDA against the stock bfloat16 LlamaRMSNorm ---- */

/* transformers rounds the normalised value to bf16 and multiplies by the
 * bf16 weight; the CUDA kernel does the same, with the sum of squares in
 * double where torch sums in f32, so an element may land one bf16 rounding
 * (2^-8 relative) away; most must be equal. */
TEST(cuda_op_fixture_rmsnorm_bf16)
{
	CUDA_TEST_BEGIN();
#ifdef HUG_CUDA
	struct op_fx x;
	if (!op_fx_init(&x, LLAMA_FIXTURE, DT_BF16, TOL_F32))
		return;
	struct arena dev;
	arena_init(&dev, "dev", 0, hug_cuda_allocator());
	struct arena dstep;
	arena_init(&dstep, "dstep", 0, hug_cuda_allocator());
	struct ag_ctx ctx;
	ag_ctx_init(&ctx, &dstep);
	struct tensor *hx = op_fx_load_as(&x, "rmsnorm.x_bf16", DT_BF16);
	struct tensor *hw = op_fx_load_as(&x, "rmsnorm.w_bf16", DT_BF16);
	struct tensor *eps = op_fx_load_as(&x, "rmsnorm.eps", DT_F64);
	struct tensor *ref = op_fx_load_as(&x, "rmsnorm.y_bf16", DT_F64);
	if (hx && hw && eps && ref) {
		struct tensor *dx = cuda_test_upload(&dev, hx, DT_BF16);
		struct tensor *dw = cuda_test_upload(&dev, hw, DT_BF16);
		struct tensor *y = ag_rmsnorm(&ctx, dx, dw, *(double *)eps->data);
		REQUIRE(y);
		double *got = cuda_test_read(y);
		const double *want = ref->data;
		int64_t n = tensor_numel(ref), equal = 0;
		for (int64_t i = 0; i < n; i++) {
			CHECK(fabs(got[i] - want[i]) <= fabs(want[i]) * 0x1p-8);
			equal += got[i] == want[i];
		}
		CHECK(equal >= n * 9 / 10);
		printf("\n    %lld of %lld equal to transformers' bf16 ", (long long)equal,
		       (long long)n);
		hug_free(got);
	}
	arena_free(&dstep);
	arena_free(&dev);
	op_fx_free(&x);
#endif
}
