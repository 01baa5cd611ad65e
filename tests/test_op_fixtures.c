/* test_op_fixtures.c: the fused ops (layernorm, gelu, softmax, attention
 * with ALiBi + causal + padding mask, cross-entropy with ignore index)
 * against float64 references computed by torch
 * (tools/ref/make_autograd_fixtures.py -> tests/fixtures/
 * autograd_ops.safetensors): forward and every gradient, in f64 (1e-10)
 * and f32 (1e-5), error measured as max|diff| / max(1, max|ref|). */
#include <math.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../base/alloc.h"
#include "../io/safetensors.h"
#include "../nn/bloom.h"
#include "harness.h"
#include "op_fixture.h"

#define OPS_FIXTURE "tests/fixtures/autograd_ops.safetensors"

#define TOL_F64 1e-10
#define TOL_F32 1e-5

/* One test's state: the fixture, a host arena for leaves, their gradients
 * and references, and the autograd context over a step arena. */
/* ---- cases ---- */

static void run_layernorm(enum dtype dt)
{
	struct op_fx x;
	if (!op_fx_init(&x, OPS_FIXTURE, dt, dt == DT_F64 ? TOL_F64 : TOL_F32))
		return;
	struct tensor *in = op_fx_leaf(&x, "layernorm.x");
	struct tensor *w = op_fx_leaf(&x, "layernorm.weight");
	struct tensor *b = op_fx_leaf(&x, "layernorm.bias");
	struct tensor *eps = op_fx_load_as(&x, "layernorm.eps", DT_F64);
	struct tensor *dy = op_fx_load(&x, "layernorm.dy");
	if (!in || !w || !b || !eps || !dy)
		goto out;
	struct tensor *y = ag_layernorm(&x.ctx, in, w, b, *(double *)eps->data);
	if (!op_fx_ok(&x, "layernorm forward"))
		goto out;
	op_fx_compare(&x, "layernorm y", y, "layernorm.y", x.tol);
	ag_backward_from(&x.ctx, y, dy);
	if (!op_fx_ok(&x, "layernorm backward"))
		goto out;
	op_fx_compare(&x, "layernorm dx", in->grad, "layernorm.dx", x.tol);
	op_fx_compare(&x, "layernorm dweight", w->grad, "layernorm.dweight", x.tol);
	op_fx_compare(&x, "layernorm dbias", b->grad, "layernorm.dbias", x.tol);
out:
	op_fx_free(&x);
}

static void run_gelu(enum dtype dt)
{
	struct op_fx x;
	if (!op_fx_init(&x, OPS_FIXTURE, dt, dt == DT_F64 ? TOL_F64 : TOL_F32))
		return;
	struct tensor *in = op_fx_leaf(&x, "gelu.x");
	struct tensor *dy = op_fx_load(&x, "gelu.dy");
	if (!in || !dy)
		goto out;
	struct tensor *y = ag_gelu(&x.ctx, in);
	if (!op_fx_ok(&x, "gelu forward"))
		goto out;
	op_fx_compare(&x, "gelu y", y, "gelu.y", x.tol);
	ag_backward_from(&x.ctx, y, dy);
	if (op_fx_ok(&x, "gelu backward"))
		op_fx_compare(&x, "gelu dx", in->grad, "gelu.dx", x.tol);
out:
	op_fx_free(&x);
}

static void run_softmax(enum dtype dt)
{
	struct op_fx x;
	if (!op_fx_init(&x, OPS_FIXTURE, dt, dt == DT_F64 ? TOL_F64 : TOL_F32))
		return;
	struct tensor *in = op_fx_leaf(&x, "softmax.x");
	struct tensor *dy = op_fx_load(&x, "softmax.dy");
	if (!in || !dy)
		goto out;
	struct tensor *y = ag_softmax(&x.ctx, in);
	if (!op_fx_ok(&x, "softmax forward"))
		goto out;
	op_fx_compare(&x, "softmax y", y, "softmax.y", x.tol);
	ag_backward_from(&x.ctx, y, dy);
	if (op_fx_ok(&x, "softmax backward"))
		op_fx_compare(&x, "softmax dx", in->grad, "softmax.dx", x.tol);
out:
	op_fx_free(&x);
}

/* q, k, v as strided views into one fused buffer laid out (B, T, H, 3 * D),
 * as BLOOM's query_key_value output is, so the kernel sees non-contiguous
 * inputs with a unit stride on D. */
static bool load_fused_qkv(struct op_fx *x, struct tensor **qkv)
{
	static const char *const keys[3] = { "attention.q", "attention.k",
					      "attention.v" };
	const struct st_tensor *s = st_find(&x->f, keys[0]);
	if (!s || s->ndim != 4)
		return false;
	int64_t B = s->shape[0], H = s->shape[1], T = s->shape[2], D = s->shape[3];
	struct tensor *buf = tensor_new(&x->a, x->dt, TENSOR_SHAPE(B, T, H, 3 * D));
	for (int i = 0; i < 3; i++) {
		struct hug_error err = { 0 };
		struct tensor *v = arena_alloc(&x->a, sizeof(*v));
		*v = *buf;
		v->ndim = 4;
		v->shape[0] = B;
		v->shape[1] = H;
		v->shape[2] = T;
		v->shape[3] = D;
		v->stride[0] = T * H * 3 * D;
		v->stride[1] = 3 * D;
		v->stride[2] = H * 3 * D;
		v->stride[3] = 1;
		v->data = (char *)buf->data + (size_t)(i * D) * dtype_size(x->dt);
		if (st_tensor_load(st_find(&x->f, keys[i]), v, &err)) {
			test_fail_at(__FILE__, __LINE__, "%s", err.msg);
			return false;
		}
		tensor_set_requires_grad(v, &x->a);
		qkv[i] = v;
	}
	return true;
}

/* `ref` is "attention" or "attention_nomask"; inputs always come from
 * "attention.*". fused: q, k, v are views into one (B, T, H, 3 * D) buffer. */
static void run_attention(enum dtype dt, const char *ref, bool masked, bool fused)
{
	struct op_fx x;
	char key[64], what[64];
	if (!op_fx_init(&x, OPS_FIXTURE, dt, dt == DT_F64 ? TOL_F64 : TOL_F32))
		return;
	struct tensor *qkv[3] = { NULL, NULL, NULL };
	if (fused) {
		if (!load_fused_qkv(&x, qkv))
			goto out;
	} else {
		qkv[0] = op_fx_leaf(&x, "attention.q");
		qkv[1] = op_fx_leaf(&x, "attention.k");
		qkv[2] = op_fx_leaf(&x, "attention.v");
	}
	struct tensor *slopes = op_fx_load(&x, "attention.slopes");
	struct tensor *mask = masked ? op_fx_load_as(&x, "attention.mask", DT_I32) : NULL;
	snprintf(key, sizeof(key), "%s.dout", ref);
	struct tensor *dout = op_fx_load(&x, key);
	if (!qkv[0] || !qkv[1] || !qkv[2] || !slopes || (masked && !mask) || !dout)
		goto out;
	struct tensor *o = ag_attention(&x.ctx, qkv[0], qkv[1], qkv[2], &(struct ag_attn_desc){
		.pos_bias = AG_POS_BIAS_ALIBI, .slopes = slopes, .causal = true, .key_mask = mask });
	if (!op_fx_ok(&x, "attention forward"))
		goto out;
	snprintf(key, sizeof(key), "%s.out", ref);
	snprintf(what, sizeof(what), "%s out", ref);
	op_fx_compare(&x, what, o, key, x.tol);
	ag_backward_from(&x.ctx, o, dout);
	if (!op_fx_ok(&x, "attention backward"))
		goto out;
	static const char *const g[3] = { "dq", "dk", "dv" };
	for (int i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "%s.%s", ref, g[i]);
		snprintf(what, sizeof(what), "%s %s", ref, g[i]);
		op_fx_compare(&x, what, qkv[i]->grad, key, x.tol);
	}
out:
	op_fx_free(&x);
}

static void run_cross_entropy(enum dtype dt)
{
	struct op_fx x;
	if (!op_fx_init(&x, OPS_FIXTURE, dt, dt == DT_F64 ? TOL_F64 : TOL_F32))
		return;
	struct tensor *logits = op_fx_leaf(&x, "cross_entropy.logits");
	struct tensor *targets = op_fx_load_as(&x, "cross_entropy.targets", DT_I32);
	if (!logits || !targets)
		goto out;
	struct tensor *loss = ag_cross_entropy(&x.ctx, logits, targets, -100);
	if (!op_fx_ok(&x, "cross_entropy forward"))
		goto out;
	op_fx_compare(&x, "cross_entropy loss", loss, "cross_entropy.loss", x.tol);
	ag_backward(&x.ctx, loss);
	if (op_fx_ok(&x, "cross_entropy backward"))
		op_fx_compare(&x, "cross_entropy dlogits", logits->grad,
			   "cross_entropy.dlogits", x.tol);
out:
	op_fx_free(&x);
}

TEST(op_fixture_layernorm_f64) { run_layernorm(DT_F64); }
TEST(op_fixture_layernorm_f32) { run_layernorm(DT_F32); }
TEST(op_fixture_gelu_f64) { run_gelu(DT_F64); }
TEST(op_fixture_gelu_f32) { run_gelu(DT_F32); }
TEST(op_fixture_softmax_f64) { run_softmax(DT_F64); }
TEST(op_fixture_softmax_f32) { run_softmax(DT_F32); }
TEST(op_fixture_attention_f64) { run_attention(DT_F64, "attention", true, false); }
TEST(op_fixture_attention_f32) { run_attention(DT_F32, "attention", true, false); }
TEST(op_fixture_attention_nomask_f64) { run_attention(DT_F64, "attention_nomask", false, false); }
TEST(op_fixture_attention_nomask_f32) { run_attention(DT_F32, "attention_nomask", false, false); }
TEST(op_fixture_attention_fused_qkv_f64) { run_attention(DT_F64, "attention", true, true); }
TEST(op_fixture_attention_fused_qkv_f32) { run_attention(DT_F32, "attention", true, true); }
TEST(op_fixture_cross_entropy_f64) { run_cross_entropy(DT_F64); }
TEST(op_fixture_cross_entropy_f32) { run_cross_entropy(DT_F32); }

/* The fixture's slopes are BLOOM's (transformers' build_alibi_tensor). */
TEST(op_fixture_alibi_slopes)
{
	struct op_fx x;
	if (!op_fx_init(&x, OPS_FIXTURE, DT_F64, TOL_F64))
		return;
	struct tensor *s = op_fx_load(&x, "attention.slopes");
	if (s) {
		double got[3];
		bloom_alibi_slopes(3, got);
		for (int i = 0; i < 3; i++)
			CHECK_NEAR(got[i], ((double *)s->data)[i], 0);
	}
	op_fx_free(&x);
}
