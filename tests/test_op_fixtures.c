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

#define OPS_FIXTURE "tests/fixtures/autograd_ops.safetensors"

#define TOL_F64 1e-10
#define TOL_F32 1e-5

/* One test's state: the fixture, a host arena for leaves, their gradients
 * and references, and the autograd context over a step arena. */
struct fx {
	struct st_file f;
	struct arena a;
	struct arena step;
	struct ag_ctx ctx;
	enum dtype dt;  /* dtype the op runs in */
	double tol;
};

static bool fx_init(struct fx *x, enum dtype dt)
{
	struct hug_error err = { 0 };
	memset(x, 0, sizeof(*x));
	x->dt = dt;
	x->tol = dt == DT_F64 ? TOL_F64 : TOL_F32;
	if (st_open(&x->f, OPS_FIXTURE, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return false;
	}
	arena_init(&x->a, "test", 0, NULL);
	arena_init(&x->step, "step", 0, NULL);
	ag_ctx_init(&x->ctx, &x->step);
	return true;
}

static void fx_free(struct fx *x)
{
	arena_free(&x->step);
	arena_free(&x->a);
	st_close(&x->f);
}

/* Loads fixture tensor `key` into a new contiguous host tensor of dtype dt
 * (converted from f64 when dt is another float type). NULL on failure,
 * recorded as a test failure. */
static struct tensor *fx_load_as(struct fx *x, const char *key, enum dtype dt)
{
	struct hug_error err = { 0 };
	const struct st_tensor *s = st_find(&x->f, key);
	if (!s) {
		test_fail_at(__FILE__, __LINE__, "%s: no tensor \"%s\"",
			     OPS_FIXTURE, key);
		return NULL;
	}
	if (s->ndim > TENSOR_MAX_DIMS) {
		test_fail_at(__FILE__, __LINE__, "\"%s\" has %d dims", key, s->ndim);
		return NULL;
	}
	struct tensor *t = tensor_new(&x->a, dt, s->ndim, s->shape);
	t->name = s->name;
	if (st_tensor_load(s, t, &err)) {
		test_fail_at(__FILE__, __LINE__, "%s", err.msg);
		return NULL;
	}
	return t;
}

/* A float input in the test's dtype. */
static struct tensor *fx_load(struct fx *x, const char *key)
{
	return fx_load_as(x, key, x->dt);
}

/* As fx_load, and marked as needing a gradient (kept in the host arena). */
static struct tensor *fx_leaf(struct fx *x, const char *key)
{
	struct tensor *t = fx_load(x, key);
	if (t)
		tensor_set_requires_grad(t, &x->a);
	return t;
}

/* Fails the test (naming `what` and the error) when `got` is NULL or
 * differs from fixture tensor `key` by more than the test's tolerance. */
static void fx_compare(struct fx *x, const char *what, const struct tensor *got,
		       const char *key)
{
	char d0[96], d1[96];
	if (!got) {
		test_fail_at(__FILE__, __LINE__, "%s (%s): no tensor%s%s", what,
			     dtype_name(x->dt), x->ctx.err.set ? ": " : "",
			     x->ctx.err.msg);
		return;
	}
	struct tensor *ref = fx_load_as(x, key, DT_F64);
	if (!ref)
		return;
	if (!tensor_same_shape(got, ref)) {
		test_fail_at(__FILE__, __LINE__, "%s: shape %s, want %s", what,
			     tensor_describe(got, d0, sizeof(d0)),
			     tensor_describe(ref, d1, sizeof(d1)));
		return;
	}
	int64_t n = tensor_numel(ref);
	double *g = hug_malloc((size_t)n * sizeof(double));
	double *r = hug_malloc((size_t)n * sizeof(double));
	tensor_read_f64(got, g);
	tensor_read_f64(ref, r);
	double maxdiff = 0, maxref = 0;
	int64_t worst = 0;
	for (int64_t i = 0; i < n; i++) {
		double diff = fabs(g[i] - r[i]);
		if (!(diff <= maxdiff)) { /* also catches NaN */
			maxdiff = diff;
			worst = i;
		}
		if (fabs(r[i]) > maxref)
			maxref = fabs(r[i]);
	}
	double e = maxdiff / (maxref > 1 ? maxref : 1);
	if (!(e <= x->tol))
		test_fail_at(__FILE__, __LINE__,
			     "%s (%s): error %.3g > %.3g (element %lld: got %.17g, want %.17g)",
			     what, dtype_name(x->dt), e, x->tol, (long long)worst,
			     n ? g[worst] : 0.0, n ? r[worst] : 0.0);
	hug_free(g);
	hug_free(r);
}

/* Reports a failed forward or backward with the context's message. */
static bool fx_ok(struct fx *x, const char *stage)
{
	if (!ag_failed(&x->ctx))
		return true;
	test_fail_at(__FILE__, __LINE__, "%s (%s): %s", stage, dtype_name(x->dt),
		     x->ctx.err.msg);
	return false;
}

/* ---- cases ---- */

static void run_layernorm(enum dtype dt)
{
	struct fx x;
	if (!fx_init(&x, dt))
		return;
	struct tensor *in = fx_leaf(&x, "layernorm.x");
	struct tensor *w = fx_leaf(&x, "layernorm.weight");
	struct tensor *b = fx_leaf(&x, "layernorm.bias");
	struct tensor *eps = fx_load_as(&x, "layernorm.eps", DT_F64);
	struct tensor *dy = fx_load(&x, "layernorm.dy");
	if (!in || !w || !b || !eps || !dy)
		goto out;
	struct tensor *y = ag_layernorm(&x.ctx, in, w, b, *(double *)eps->data);
	if (!fx_ok(&x, "layernorm forward"))
		goto out;
	fx_compare(&x, "layernorm y", y, "layernorm.y");
	ag_backward_from(&x.ctx, y, dy);
	if (!fx_ok(&x, "layernorm backward"))
		goto out;
	fx_compare(&x, "layernorm dx", in->grad, "layernorm.dx");
	fx_compare(&x, "layernorm dweight", w->grad, "layernorm.dweight");
	fx_compare(&x, "layernorm dbias", b->grad, "layernorm.dbias");
out:
	fx_free(&x);
}

static void run_gelu(enum dtype dt)
{
	struct fx x;
	if (!fx_init(&x, dt))
		return;
	struct tensor *in = fx_leaf(&x, "gelu.x");
	struct tensor *dy = fx_load(&x, "gelu.dy");
	if (!in || !dy)
		goto out;
	struct tensor *y = ag_gelu(&x.ctx, in);
	if (!fx_ok(&x, "gelu forward"))
		goto out;
	fx_compare(&x, "gelu y", y, "gelu.y");
	ag_backward_from(&x.ctx, y, dy);
	if (fx_ok(&x, "gelu backward"))
		fx_compare(&x, "gelu dx", in->grad, "gelu.dx");
out:
	fx_free(&x);
}

static void run_softmax(enum dtype dt)
{
	struct fx x;
	if (!fx_init(&x, dt))
		return;
	struct tensor *in = fx_leaf(&x, "softmax.x");
	struct tensor *dy = fx_load(&x, "softmax.dy");
	if (!in || !dy)
		goto out;
	struct tensor *y = ag_softmax(&x.ctx, in);
	if (!fx_ok(&x, "softmax forward"))
		goto out;
	fx_compare(&x, "softmax y", y, "softmax.y");
	ag_backward_from(&x.ctx, y, dy);
	if (fx_ok(&x, "softmax backward"))
		fx_compare(&x, "softmax dx", in->grad, "softmax.dx");
out:
	fx_free(&x);
}

/* q, k, v as strided views into one fused buffer laid out (B, T, H, 3 * D),
 * as BLOOM's query_key_value output is, so the kernel sees non-contiguous
 * inputs with a unit stride on D. */
static bool load_fused_qkv(struct fx *x, struct tensor **qkv)
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
	struct fx x;
	char key[64], what[64];
	if (!fx_init(&x, dt))
		return;
	struct tensor *qkv[3] = { NULL, NULL, NULL };
	if (fused) {
		if (!load_fused_qkv(&x, qkv))
			goto out;
	} else {
		qkv[0] = fx_leaf(&x, "attention.q");
		qkv[1] = fx_leaf(&x, "attention.k");
		qkv[2] = fx_leaf(&x, "attention.v");
	}
	struct tensor *slopes = fx_load(&x, "attention.slopes");
	struct tensor *mask = masked ? fx_load_as(&x, "attention.mask", DT_I32) : NULL;
	snprintf(key, sizeof(key), "%s.dout", ref);
	struct tensor *dout = fx_load(&x, key);
	if (!qkv[0] || !qkv[1] || !qkv[2] || !slopes || (masked && !mask) || !dout)
		goto out;
	struct tensor *o = ag_attention(&x.ctx, qkv[0], qkv[1], qkv[2], &(struct ag_attn_desc){
		.pos_bias = AG_POS_BIAS_ALIBI, .slopes = slopes, .causal = true, .key_mask = mask });
	if (!fx_ok(&x, "attention forward"))
		goto out;
	snprintf(key, sizeof(key), "%s.out", ref);
	snprintf(what, sizeof(what), "%s out", ref);
	fx_compare(&x, what, o, key);
	ag_backward_from(&x.ctx, o, dout);
	if (!fx_ok(&x, "attention backward"))
		goto out;
	static const char *const g[3] = { "dq", "dk", "dv" };
	for (int i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "%s.%s", ref, g[i]);
		snprintf(what, sizeof(what), "%s %s", ref, g[i]);
		fx_compare(&x, what, qkv[i]->grad, key);
	}
out:
	fx_free(&x);
}

static void run_cross_entropy(enum dtype dt)
{
	struct fx x;
	if (!fx_init(&x, dt))
		return;
	struct tensor *logits = fx_leaf(&x, "cross_entropy.logits");
	struct tensor *targets = fx_load_as(&x, "cross_entropy.targets", DT_I32);
	if (!logits || !targets)
		goto out;
	struct tensor *loss = ag_cross_entropy(&x.ctx, logits, targets, -100);
	if (!fx_ok(&x, "cross_entropy forward"))
		goto out;
	fx_compare(&x, "cross_entropy loss", loss, "cross_entropy.loss");
	ag_backward(&x.ctx, loss);
	if (fx_ok(&x, "cross_entropy backward"))
		fx_compare(&x, "cross_entropy dlogits", logits->grad,
			   "cross_entropy.dlogits");
out:
	fx_free(&x);
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
	struct fx x;
	if (!fx_init(&x, DT_F64))
		return;
	struct tensor *s = fx_load(&x, "attention.slopes");
	if (s) {
		double got[3];
		bloom_alibi_slopes(3, got);
		for (int i = 0; i < 3; i++)
			CHECK_NEAR(got[i], ((double *)s->data)[i], 0);
	}
	fx_free(&x);
}
