/* test_attention_tiled.c: the tiled (flash-style) attention kernel against
 * the exact one that materialises the probabilities, on the CPU: outputs
 * and q, k, v gradients within 1e-5 in f32 over shapes that cross the
 * tiles (T not a multiple of the 64-row blocks or the 128-key tiles, odd
 * head sizes), causal and not, ALiBi, padding, grouped heads, a sliding
 * window, Tq < Tk, dropout and packed-document segments; the f64
 * finite-difference check through the tiled path; packed documents give
 * each document's own attention (positions restart); what the tiled node
 * saves (the log-sum-exp, not the probabilities); HUG_ATTENTION=exact. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../base/alloc.h"
#include "../nn/bloom.h"
#include "ag_env.h"
#include "gradcheck.h"
#include "harness.h"

struct tcase {
	const char *name;
	int64_t b, h, hkv, tq, tk, d, window;
	bool causal, alibi, mask, segs;
	double p; /* dropout */
};

/* in[0..2] q, k, v; in[3] slopes or NULL; in[4] mask or NULL; in[5]
 * segments or NULL. */
struct run {
	const struct tcase *c;
	enum ag_attn_kernel kernel;
};

static struct tensor *build(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	const struct run *r = user;
	const struct tcase *c = r->c;
	return ag_attention(ctx, in[0], in[1], in[2], &(struct ag_attn_desc){
		.pos_bias = c->alibi ? AG_POS_BIAS_ALIBI : AG_POS_BIAS_NONE, .slopes = in[3],
		.causal = c->causal, .window = c->window, .key_mask = in[4],
		.segments = in[5], .dropout = c->p, .kernel = r->kernel });
}

static struct tensor *leaf(struct ag_env *e, enum dtype dt, uint64_t seed, int64_t b,
			   int64_t h, int64_t t, int64_t d, bool grad)
{
	struct tensor *x = tensor_new(&e->model, dt, TENSOR_SHAPE(b, h, t, d));
	gradcheck_fill_uniform(x, seed, -1.5, 1.5);
	if (grad)
		tensor_set_requires_grad(x, &e->model);
	return x;
}

/* Batch row 0 left-padded by 3, the last row with a hole; segments: runs
 * of 1 to 57 tokens (a new document every few keys, varying by row). */
static void make_inputs(struct ag_env *e, const struct tcase *c, enum dtype dt,
			struct tensor **in)
{
	in[0] = leaf(e, dt, 301, c->b, c->h, c->tq, c->d, true);
	in[1] = leaf(e, dt, 302, c->b, c->hkv, c->tk, c->d, true);
	in[2] = leaf(e, dt, 303, c->b, c->hkv, c->tk, c->d, true);
	in[3] = in[4] = in[5] = NULL;
	if (c->alibi) {
		double sl[64];
		bloom_alibi_slopes((int)c->h, sl);
		in[3] = tensor_new(&e->model, dt, TENSOR_SHAPE(c->h));
		tensor_write_f64(in[3], sl);
	}
	if (c->mask) {
		in[4] = tensor_new(&e->model, DT_I32, TENSOR_SHAPE(c->b, c->tk));
		int32_t *m = in[4]->data;
		for (int64_t b = 0; b < c->b; b++)
			for (int64_t j = 0; j < c->tk; j++)
				m[b * c->tk + j] = !(b == 0 && j < 3) &&
						   !(b == c->b - 1 && b > 0 && j >= 5 && j < 9);
	}
	if (c->segs) {
		in[5] = tensor_new(&e->model, DT_I32, TENSOR_SHAPE(c->b, c->tk));
		int32_t *s = in[5]->data;
		for (int64_t b = 0; b < c->b; b++) {
			int32_t id = 0;
			int64_t left = 1 + b * 5;
			for (int64_t j = 0; j < c->tk; j++) {
				if (left-- == 0) {
					id++;
					left = (id * 17 + b * 7) % 57;
				}
				s[b * c->tk + j] = id;
			}
		}
	}
}

static double *read_all(const struct tensor *t)
{
	double *x = hug_malloc((size_t)tensor_numel(t) * sizeof(double));
	tensor_read_f64(t, x);
	return x;
}

/* Runs one kernel: out, dq, dk, dv (f32 -> f64 arrays in res[0..3]). */
static void run_kernel(const struct tcase *c, enum ag_attn_kernel kernel, double **res)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *in[6];
	make_inputs(&e, c, DT_F32, in);
	struct tensor *dout = leaf(&e, DT_F32, 304, c->b, c->h, c->tq, c->d, false);
	struct run r = { c, kernel };
	struct tensor *o = build(&e.ctx, in, &r);
	REQUIRE(o);
	REQUIRE(ag_backward_from(&e.ctx, o, dout) == 0);
	res[0] = read_all(o);
	for (int i = 0; i < 3; i++)
		res[i + 1] = read_all(in[i]->grad);
	ag_env_free(&e);
}

static double max_diff(const double *a, const double *b, int64_t n)
{
	double m = 0;
	for (int64_t i = 0; i < n; i++) {
		double d = fabs(a[i] - b[i]);
		if (!(d <= m))
			m = isnan(d) ? INFINITY : d;
	}
	return m;
}

static const struct tcase cases[] = {
	{ "causal alibi mask, T 300, D 24", 2, 3, 3, 300, 300, 24, 0, true, true, true, false, 0 },
	{ "gqa 6/2, D 64, T 200, mask", 2, 6, 2, 200, 200, 64, 0, true, false, true, false, 0 },
	{ "gqa 6/2, D 40, window 37", 1, 6, 2, 257, 257, 40, 37, true, false, true, false, 0 },
	{ "window 150 > tile, alibi", 1, 2, 1, 300, 300, 7, 150, true, true, false, false, 0 },
	{ "not causal, D 5, T 131", 2, 2, 2, 131, 131, 5, 0, false, true, true, false, 0 },
	{ "tq 70 < tk 260, gqa", 2, 4, 2, 70, 260, 16, 0, true, true, true, false, 0 },
	{ "tq 1 < tk 129", 2, 2, 1, 1, 129, 9, 0, true, true, true, false, 0 },
	{ "dropout 0.2, gqa, mask", 2, 4, 2, 150, 150, 8, 0, true, true, true, false, 0.2 },
	{ "segments, causal, alibi, mask", 2, 3, 3, 300, 300, 12, 0, true, true, true, true, 0 },
	{ "segments, gqa, window 20", 2, 6, 2, 190, 190, 8, 20, true, false, false, true, 0 },
	{ "segments, dropout", 1, 2, 1, 140, 140, 6, 0, true, true, false, true, 0.3 },
	{ "D 150 > tile width", 1, 2, 2, 70, 70, 150, 0, true, false, false, false, 0 },
};

TEST(attention_tiled_matches_exact)
{
	for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
		const struct tcase *c = &cases[t];
		double *a[4], *b[4];
		run_kernel(c, AG_ATTN_KERNEL_TILED, a);
		run_kernel(c, AG_ATTN_KERNEL_EXACT, b);
		int64_t nq = c->b * c->h * c->tq * c->d, nk = c->b * c->hkv * c->tk * c->d;
		int64_t n[4] = { nq, nq, nk, nk };
		const char *what[4] = { "out", "dq", "dk", "dv" };
		printf("\n    %-34s", c->name);
		for (int i = 0; i < 4; i++) {
			double err = max_diff(a[i], b[i], n[i]);
			printf(" %s %.1e", what[i], err);
			if (!(err <= 1e-5))
				test_fail_at(__FILE__, __LINE__, "%s: tiled %s off the exact by %g",
					     c->name, what[i], err);
			hug_free(a[i]);
			hug_free(b[i]);
		}
	}
	printf("\n    ");
}

/* f64 finite differences through the tiled kernel, at sizes that cross a
 * row block and a key tile. */
TEST(gradcheck_attention_tiled)
{
	const struct tcase gc[] = {
		{ "tiled: causal alibi mask segments", 1, 2, 1, 140, 140, 3, 0, true, true, true, true, 0 },
		{ "tiled: gqa window not multiple", 2, 2, 1, 133, 133, 2, 70, true, false, true, false, 0 },
		{ "tiled: dropout", 1, 2, 2, 70, 70, 2, 0, true, true, true, false, 0.25 },
	};
	for (size_t t = 0; t < sizeof(gc) / sizeof(gc[0]); t++) {
		struct ag_env e;
		ag_env_init(&e, 0);
		struct tensor *in[6];
		make_inputs(&e, &gc[t], DT_F64, in);
		struct run r = { &gc[t], AG_ATTN_KERNEL_TILED };
		CHECK_GRAD(gc[t].name, build, in, 6, &r, NULL);
		ag_env_free(&e);
	}
}

/* Two documents packed in one row with segments give each document's own
 * attention run alone (ALiBi positions restart at the second one), under
 * both kernels. */
TEST(attention_segments_match_documents_alone)
{
	enum { H = 3, D = 5, T1 = 70, T2 = 93, T = T1 + T2 };
	for (int kern = AG_ATTN_KERNEL_TILED; kern <= AG_ATTN_KERNEL_EXACT; kern++) {
		struct ag_env e;
		ag_env_init(&e, 0);
		struct tensor *q = leaf(&e, DT_F64, 11, 1, H, T, D, false);
		struct tensor *k = leaf(&e, DT_F64, 12, 1, H, T, D, false);
		struct tensor *v = leaf(&e, DT_F64, 13, 1, H, T, D, false);
		struct tensor *sl = tensor_new(&e.model, DT_F64, TENSOR_SHAPE(H));
		double slopes[H];
		bloom_alibi_slopes(H, slopes);
		tensor_write_f64(sl, slopes);
		struct tensor *seg = tensor_new(&e.model, DT_I32, TENSOR_SHAPE(1, T));
		for (int j = 0; j < T; j++)
			((int32_t *)seg->data)[j] = j < T1 ? 4 : 9;
		struct ag_attn_desc ad = { .pos_bias = AG_POS_BIAS_ALIBI, .slopes = sl,
					   .causal = true, .segments = seg,
					   .kernel = (enum ag_attn_kernel)kern };
		struct tensor *o = ag_attention(&e.ctx, q, k, v, &ad);
		REQUIRE(o);
		double *y = read_all(o);
		ad.segments = NULL;
		const int64_t start[2] = { 0, T1 }, len[2] = { T1, T2 };
		for (int doc = 0; doc < 2; doc++) {
			struct tensor *qd = ag_slice(&e.ctx, q, 2, start[doc], len[doc]);
			struct tensor *kd = ag_slice(&e.ctx, k, 2, start[doc], len[doc]);
			struct tensor *vd = ag_slice(&e.ctx, v, 2, start[doc], len[doc]);
			struct tensor *od = ag_attention(&e.ctx, qd, kd, vd, &ad);
			REQUIRE(od);
			double *yd = read_all(od), worst = 0;
			for (int64_t h = 0; h < H; h++) {
				double d = max_diff(yd + h * len[doc] * D,
						    y + (h * T + start[doc]) * D, len[doc] * D);
				worst = d > worst ? d : worst;
			}
			if (!(worst <= 1e-12))
				test_fail_at(__FILE__, __LINE__, "kernel %d document %d: packed "
					     "off the document alone by %g", kern, doc, worst);
			hug_free(yd);
		}
		hug_free(y);
		ag_env_free(&e);
	}
}

/* The tiled node saves the log-sum-exp (B, H, Tq), the exact one the
 * probabilities (B, H, Tq, Tk); HUG_ATTENTION=exact makes the default the
 * exact kernel; segments of the wrong shape are an op error. */
TEST(attention_tiled_saves_rows_only)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *q = leaf(&e, DT_F32, 1, 2, 3, 50, 4, true);
	struct tensor *o = ag_attention(&e.ctx, q, q, q, &(struct ag_attn_desc){ .causal = true });
	REQUIRE(o && o->node);
	CHECK(tensor_numel(o->node->saved[0]) == 2 * 3 * 50);
	setenv("HUG_ATTENTION", "exact", 1);
	o = ag_attention(&e.ctx, q, q, q, &(struct ag_attn_desc){ .causal = true });
	unsetenv("HUG_ATTENTION");
	REQUIRE(o && o->node);
	CHECK(tensor_numel(o->node->saved[0]) == 2 * 3 * 50 * 50);
	o = ag_attention(&e.ctx, q, q, q, &(struct ag_attn_desc){
		.causal = true, .kernel = AG_ATTN_KERNEL_TILED });
	REQUIRE(o && o->node);
	CHECK(tensor_numel(o->node->saved[0]) == 2 * 3 * 50);
	struct tensor *bad = tensor_new(&e.model, DT_I32, TENSOR_SHAPE(2, 49));
	CHECK(!ag_attention(&e.ctx, q, q, q, &(struct ag_attn_desc){ .segments = bad }));
	CHECK(strstr(e.ctx.err.msg, "segments must be (B, Tk) = (2, 50)") != NULL);
	ag_env_free(&e);
}
