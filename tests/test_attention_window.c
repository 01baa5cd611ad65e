/* test_attention_window.c: the CPU attention with grouped key/value heads
 * and a sliding window against a brute-force f64 reference written here
 * (the masked scores built element by element, the softmax and its
 * backward by hand), outputs and q, k, v gradients to 1e-12; finite
 * differences over the same cases; the kept keys against transformers'
 * own sliding-window mask; KV-cache decoding (Tq < Tk) with a
 * window equal to the full forward's last rows; and the op errors for a
 * bad window. The window rule is transformers'
 * sliding_window_causal_mask_function on cache positions: query i
 * (absolute Tk - Tq + i) sees key j when 0 <= (Tk - Tq + i) - j < window,
 * padding included in the count. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../base/alloc.h"
#include "../nn/bloom.h"
#include "ag_env.h"
#include "gradcheck.h"
#include "harness.h"

/* One configuration: shapes, the window (0: none), ALiBi or not. */
struct win_case {
	const char *name;
	int64_t b, h, hkv, tq, tk, d, window;
	bool causal, alibi;
	const int32_t *mask; /* (B, Tk) or NULL */
};

/* The brute-force reference, f64, every array contiguous: q and dq
 * (B, H, Tq, D), k, v, dk, dv (B, Hkv, Tk, D), out and dout (B, H, Tq, D).
 * Computes out, and the gradients for output gradient dout (zeroed here). */
static void ref_attention(const struct win_case *c, const double *q, const double *k,
			  const double *v, const double *slopes, const double *dout,
			  double *out, double *dq, double *dk, double *dv)
{
	int64_t B = c->b, H = c->h, G = c->h / c->hkv, TQ = c->tq, TK = c->tk, D = c->d;
	double scale = 1.0 / sqrt((double)D);
	memset(dq, 0, (size_t)(B * H * TQ * D) * sizeof(double));
	memset(dk, 0, (size_t)(B * c->hkv * TK * D) * sizeof(double));
	memset(dv, 0, (size_t)(B * c->hkv * TK * D) * sizeof(double));
	double *s = hug_malloc((size_t)TK * sizeof(double));
	double *p = hug_malloc((size_t)TK * sizeof(double));
	bool *ok = hug_malloc((size_t)TK * sizeof(bool));
	for (int64_t b = 0; b < B; b++)
		for (int64_t h = 0; h < H; h++)
			for (int64_t i = 0; i < TQ; i++) {
				int64_t qpos = TK - TQ + i, kv = b * c->hkv + h / G;
				const double *qi = q + ((b * H + h) * TQ + i) * D;
				const double *go = dout + ((b * H + h) * TQ + i) * D;
				double *o = out + ((b * H + h) * TQ + i) * D;
				double m = -INFINITY;
				int64_t kept = 0;
				for (int64_t j = 0; j < TK; j++) {
					bool keep = c->mask ? c->mask[b * TK + j] != 0 : true;
					kept += keep;
					ok[j] = keep;
					if (c->causal && j > qpos)
						ok[j] = false;
					if (c->window && qpos - j >= c->window)
						ok[j] = false;
					const double *kj = k + (kv * TK + j) * D;
					double dot = 0;
					for (int64_t d = 0; d < D; d++)
						dot += qi[d] * kj[d];
					double pos = (double)(c->mask ? kept - 1 : j);
					s[j] = scale * dot + (slopes ? slopes[h] * pos : 0);
					if (ok[j])
						m = fmax(m, s[j]);
				}
				for (int64_t d = 0; d < D; d++)
					o[d] = 0;
				if (m == -INFINITY)
					continue; /* every key hidden: zeros, no gradient */
				double z = 0;
				for (int64_t j = 0; j < TK; j++)
					z += ok[j] ? exp(s[j] - m) : 0;
				double rowdot = 0;
				for (int64_t j = 0; j < TK; j++) {
					p[j] = ok[j] ? exp(s[j] - m) / z : 0;
					const double *vj = v + (kv * TK + j) * D;
					double dp = 0;
					for (int64_t d = 0; d < D; d++) {
						o[d] += p[j] * vj[d];
						dp += go[d] * vj[d];
						dv[(kv * TK + j) * D + d] += p[j] * go[d];
					}
					s[j] = dp; /* dP */
					rowdot += p[j] * dp;
				}
				for (int64_t j = 0; j < TK; j++) {
					double ds = p[j] * (s[j] - rowdot) * scale;
					const double *kj = k + (kv * TK + j) * D;
					for (int64_t d = 0; d < D; d++) {
						dq[((b * H + h) * TQ + i) * D + d] += ds * kj[d];
						dk[(kv * TK + j) * D + d] += ds * qi[d];
					}
				}
			}
	hug_free(ok);
	hug_free(p);
	hug_free(s);
}

/* inputs of a case: in[0..2] q, k, v (f64, requiring grad), in[3] the
 * ALiBi slopes or NULL, in[4] the mask or NULL */
static struct tensor *build(struct ag_ctx *ctx, struct tensor **in, void *user)
{
	const struct win_case *c = user;
	return ag_attention(ctx, in[0], in[1], in[2], &(struct ag_attn_desc){
		.pos_bias = c->alibi ? AG_POS_BIAS_ALIBI : AG_POS_BIAS_NONE, .slopes = in[3],
		.causal = c->causal, .window = c->window, .key_mask = in[4] });
}

static struct tensor *leaf(struct ag_env *e, uint64_t seed, int64_t b, int64_t h,
			   int64_t t, int64_t d, bool grad)
{
	struct tensor *x = tensor_new(&e->model, DT_F64, TENSOR_SHAPE(b, h, t, d));
	gradcheck_fill_uniform(x, seed, -1.5, 1.5);
	if (grad)
		tensor_set_requires_grad(x, &e->model);
	return x;
}

static void make_inputs(struct ag_env *e, const struct win_case *c, struct tensor **in,
			double *slopes)
{
	in[0] = leaf(e, 201, c->b, c->h, c->tq, c->d, true);
	in[1] = leaf(e, 202, c->b, c->hkv, c->tk, c->d, true);
	in[2] = leaf(e, 203, c->b, c->hkv, c->tk, c->d, true);
	in[3] = NULL;
	if (c->alibi) {
		bloom_alibi_slopes((int)c->h, slopes);
		in[3] = tensor_new(&e->model, DT_F64, TENSOR_SHAPE(c->h));
		tensor_write_f64(in[3], slopes);
	}
	in[4] = NULL;
	if (c->mask) {
		in[4] = tensor_new(&e->model, DT_I32, TENSOR_SHAPE(c->b, c->tk));
		memcpy(in[4]->data, c->mask, tensor_nbytes(in[4]));
	}
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

static double *read_all(const struct tensor *t)
{
	double *x = hug_malloc((size_t)tensor_numel(t) * sizeof(double));
	tensor_read_f64(t, x);
	return x;
}

/* The op against the reference, forward and backward, to 1e-12; then the
 * finite-difference check. */
static void check_case(const struct win_case *c)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *in[5];
	double slopes[16];
	make_inputs(&e, c, in, c->alibi ? slopes : NULL);
	int64_t nq = c->b * c->h * c->tq * c->d, nk = c->b * c->hkv * c->tk * c->d;
	struct tensor *dout = leaf(&e, 204, c->b, c->h, c->tq, c->d, false);
	double *q = read_all(in[0]), *k = read_all(in[1]), *v = read_all(in[2]);
	double *go = read_all(dout);
	double *want = hug_malloc((size_t)nq * sizeof(double));
	double *wq = hug_malloc((size_t)nq * sizeof(double));
	double *wk = hug_malloc((size_t)nk * sizeof(double));
	double *wv = hug_malloc((size_t)nk * sizeof(double));
	ref_attention(c, q, k, v, c->alibi ? slopes : NULL, go, want, wq, wk, wv);

	struct tensor *o = build(&e.ctx, in, (void *)c);
	REQUIRE(o);
	REQUIRE(ag_backward_from(&e.ctx, o, dout) == 0);
	double *got = read_all(o), *gq = read_all(in[0]->grad);
	double *gk = read_all(in[1]->grad), *gv = read_all(in[2]->grad);
	double err[4] = { max_diff(got, want, nq), max_diff(gq, wq, nq),
			  max_diff(gk, wk, nk), max_diff(gv, wv, nk) };
	const char *what[4] = { "output", "dq", "dk", "dv" };
	for (int t = 0; t < 4; t++)
		if (!(err[t] <= 1e-12))
			test_fail_at(__FILE__, __LINE__, "%s: %s off the reference by %g",
				     c->name, what[t], err[t]);
	printf("\n    %-36s out %.1e dq %.1e dk %.1e dv %.1e", c->name, err[0], err[1],
	       err[2], err[3]);
	ag_ctx_reset(&e.ctx);
	CHECK_GRAD(c->name, build, in, 5, (void *)c, NULL);
	hug_free(gv);
	hug_free(gk);
	hug_free(gq);
	hug_free(got);
	hug_free(wv);
	hug_free(wk);
	hug_free(wq);
	hug_free(want);
	hug_free(go);
	hug_free(v);
	hug_free(k);
	hug_free(q);
	ag_env_free(&e);
}

/* Row 0 left-padded (2 tokens); row 1 with a hole of 4 at 2..5, which
 * leaves query 5 no key inside a window of 4 although keys 0 and 1 are
 * kept (a zero row that only the window makes). */
static const int32_t mask9[2 * 9] = {
	0, 0, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 0, 0, 0, 0, 1, 1, 1,
};

TEST(attention_window_brute_force)
{
	const struct win_case cases[] = {
		{ "gqa 4/2, window 4, mask", 2, 4, 2, 9, 9, 5, 4, true, false, mask9 },
		{ "gqa 4/2, window 4, no mask", 2, 4, 2, 9, 9, 5, 4, true, false, NULL },
		{ "gqa 4/2, window 4, alibi, mask", 2, 4, 2, 9, 9, 5, 4, true, true, mask9 },
		{ "gqa 4/2, window 3, tq 4 < tk 9", 2, 4, 2, 4, 9, 5, 3, true, false, mask9 },
		{ "mqa 4/1, window 2, mask", 2, 4, 1, 9, 9, 3, 2, true, false, mask9 },
		{ "gqa 4/2, window 1, mask", 2, 4, 2, 9, 9, 3, 1, true, false, mask9 },
		{ "gqa 4/2, window 20 > tk, mask", 2, 4, 2, 9, 9, 3, 20, true, false, mask9 },
		{ "gqa 4/2, causal, no window", 2, 4, 2, 9, 9, 5, 0, true, false, mask9 },
		{ "mqa 3/1, not causal, mask", 2, 3, 1, 9, 9, 4, 0, false, false, mask9 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
	printf("\n    ");
}

/* The query that only the window hides from every kept key gives zeros,
 * and its neighbour that sees one kept key does not. */
TEST(attention_window_dead_row_is_zero)
{
	const struct win_case c = { "dead", 2, 4, 2, 9, 9, 5, 4, true, false, mask9 };
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *in[5];
	make_inputs(&e, &c, in, NULL);
	struct tensor *o = build(&e.ctx, in, (void *)&c);
	REQUIRE(o);
	double *y = read_all(o); /* (2, 4, 9, 5) */
	for (int64_t h = 0; h < 4; h++)
		for (int64_t d = 0; d < 5; d++) {
			CHECK(y[(((1 * 4 + h) * 9) + 5) * 5 + d] == 0);
			CHECK(y[(((1 * 4 + h) * 9) + 6) * 5 + d] != 0);
		}
	hug_free(y);
	ag_env_free(&e);
}

/* Which keys each query of mask9 may see with window 4 under transformers'
 * own mask (create_sliding_window_causal_mask, Mistral's eager path),
 * printed by tools/ref/print_window_mask.py. */
/* transformers 5.25.0, window 4 */
static const int hf_allowed9[2][9][9] = {
	{
		{ 0, 0, 0, 0, 0, 0, 0, 0, 0 },
		{ 0, 0, 0, 0, 0, 0, 0, 0, 0 },
		{ 0, 0, 1, 0, 0, 0, 0, 0, 0 },
		{ 0, 0, 1, 1, 0, 0, 0, 0, 0 },
		{ 0, 0, 1, 1, 1, 0, 0, 0, 0 },
		{ 0, 0, 1, 1, 1, 1, 0, 0, 0 },
		{ 0, 0, 0, 1, 1, 1, 1, 0, 0 },
		{ 0, 0, 0, 0, 1, 1, 1, 1, 0 },
		{ 0, 0, 0, 0, 0, 1, 1, 1, 1 },
	},
	{
		{ 1, 0, 0, 0, 0, 0, 0, 0, 0 },
		{ 1, 1, 0, 0, 0, 0, 0, 0, 0 },
		{ 1, 1, 0, 0, 0, 0, 0, 0, 0 },
		{ 1, 1, 0, 0, 0, 0, 0, 0, 0 },
		{ 0, 1, 0, 0, 0, 0, 0, 0, 0 },
		{ 0, 0, 0, 0, 0, 0, 0, 0, 0 },
		{ 0, 0, 0, 0, 0, 0, 1, 0, 0 },
		{ 0, 0, 0, 0, 0, 0, 1, 1, 0 },
		{ 0, 0, 0, 0, 0, 0, 1, 1, 1 },
	},
};

/* The op hides exactly the keys transformers' mask hides: with v the
 * identity (D = Tk, v_j = e_j) the output row of query i is its
 * probability row, positive exactly at the kept keys. */
TEST(attention_window_matches_transformers_mask)
{
	const struct win_case c = { "hf", 2, 4, 2, 9, 9, 9, 4, true, false, mask9 };
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *in[5];
	make_inputs(&e, &c, in, NULL);
	double *eye = hug_calloc(2 * 2 * 9 * 9, sizeof(double));
	for (int64_t bk = 0; bk < 2 * 2; bk++)
		for (int64_t j = 0; j < 9; j++)
			eye[(bk * 9 + j) * 9 + j] = 1;
	tensor_write_f64(in[2], eye);
	struct tensor *o = build(&e.ctx, in, (void *)&c);
	REQUIRE(o);
	double *y = read_all(o); /* (2, 4, 9, 9): p_ij */
	int bad = 0;
	for (int64_t b = 0; b < 2; b++)
		for (int64_t h = 0; h < 4; h++)
			for (int64_t i = 0; i < 9; i++)
				for (int64_t j = 0; j < 9; j++)
					bad += (y[((b * 4 + h) * 9 + i) * 9 + j] > 0) !=
					       (hf_allowed9[b][i][j] != 0);
	CHECK(bad == 0);
	hug_free(y);
	hug_free(eye);
	ag_env_free(&e);
}

/* KV-cache decoding: the last Tq query rows against all Tk keys give the
 * full forward's last Tq rows, with a window and a padding mask, for
 * Tq = 1 and 3 (q a strided view of the full q). */
TEST(attention_window_kv_cache_matches_full)
{
	const struct win_case full = { "full", 2, 4, 2, 9, 9, 5, 4, true, false, mask9 };
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *in[5];
	make_inputs(&e, &full, in, NULL);
	struct tensor *o = build(&e.ctx, in, (void *)&full);
	REQUIRE(o);
	double *y = read_all(o);
	for (int64_t tq = 1; tq <= 3; tq += 2) {
		struct win_case c = full;
		c.tq = tq;
		struct tensor *qin[5] = { ag_slice(&e.ctx, in[0], 2, 9 - tq, tq), in[1], in[2],
					  NULL, in[4] };
		struct tensor *ot = build(&e.ctx, qin, &c);
		REQUIRE(ot);
		double *yt = read_all(ot); /* (2, 4, tq, 5) */
		double worst = 0;
		for (int64_t bh = 0; bh < 2 * 4; bh++) {
			double d = max_diff(yt + bh * tq * 5, y + (bh * 9 + 9 - tq) * 5, tq * 5);
			worst = d > worst ? d : worst;
		}
		if (!(worst <= 1e-12))
			test_fail_at(__FILE__, __LINE__, "Tq = %lld: off the full forward by %g",
				     (long long)tq, worst);
		hug_free(yt);
	}
	hug_free(y);
	ag_env_free(&e);
}

/* A negative window, or a window without the causal rule, is an op error
 * naming the op and the value. */
TEST(attention_window_errors)
{
	struct ag_env e;
	ag_env_init(&e, 0);
	struct tensor *q = leaf(&e, 1, 1, 2, 3, 4, false), *k = leaf(&e, 2, 1, 1, 3, 4, false);
	CHECK(!ag_attention(&e.ctx, q, k, k,
			    &(struct ag_attn_desc){ .causal = true, .window = -2 }));
	CHECK(strstr(e.ctx.err.msg, "attention:") == e.ctx.err.msg);
	CHECK(strstr(e.ctx.err.msg, "window -2") != NULL);
	ag_ctx_reset(&e.ctx);
	CHECK(!ag_attention(&e.ctx, q, k, k, &(struct ag_attn_desc){ .window = 3 }));
	CHECK(strstr(e.ctx.err.msg, "attention:") == e.ctx.err.msg);
	CHECK(strstr(e.ctx.err.msg, "window 3 with causal false") != NULL);
	ag_ctx_reset(&e.ctx);
	CHECK(ag_attention(&e.ctx, q, k, k, &(struct ag_attn_desc){ .causal = true, .window = 3 }));
	ag_env_free(&e);
}
