/* attention.tmpl.h: REAL-typed fused causal self-attention with ALiBi and a
 * padding mask (see instantiate.h and ag_attention in autograd.h). Work is
 * split over (batch, head) pairs, which touch disjoint outputs. */
#include <tgmath.h>

#include "fast_math.h"

/* Strided access to one (b, h) slice of a (B, H, T, D) tensor. */
struct FN(attn_view) {
	const REAL *base;  /* element (b, h, 0, 0) */
	int64_t st;        /* stride between positions */
};

/* The dropout factor of probability element `idx` (numbered within this
 * rank's heads): 1 without dropout, else 0 or 1/(1-p) from the
 * counter-based stream (as ag_dropout), numbered over all heads. */
static inline REAL FN(drop)(const struct ag_node *n, int64_t idx)
{
	double p = n->p.attention.p;
	if (p == 0.0)
		return (REAL)1;
	if (n->p.attention.head_offset || n->p.attention.n_head_total != n->in[0]->shape[1]) {
		/* idx = ((b H + h) Tq + i) Tk + j -> ((b Htot + h0 + h) Tq + i) Tk + j */
		int64_t h = n->in[0]->shape[1], tqk = n->in[0]->shape[2] * n->in[1]->shape[2];
		int64_t bh = idx / tqk, rest = idx % tqk;
		idx = ((bh / h) * n->p.attention.n_head_total + n->p.attention.head_offset +
		       bh % h) * tqk + rest;
	}
	return rng_uniform(n->p.attention.seed, n->p.attention.offset + (uint64_t)idx) >= (float)p
		       ? (REAL)(1.0 / (1.0 - p)) : (REAL)0;
}

static inline REAL FN(dot)(const REAL *a, const REAL *b, int64_t d)
{
	REAL s = 0;
#pragma omp simd reduction(+ : s)
	for (int64_t i = 0; i < d; i++)
		s += a[i] * b[i];
	return s;
}

static void FN(attention_fwd)(const struct attn_shape *as, const struct ag_node *n)
{
	const struct tensor *q = n->in[0], *k = n->in[1], *v = n->in[2];
	const REAL *slopes = n->in[3] ? n->in[3]->data : NULL;
	const int32_t *mask = n->in[4] ? n->in[4]->data : NULL;
	REAL *out = n->out->data, *probs = n->saved[0]->data;
	REAL scale = (REAL)n->p.attention.scale;
	bool causal = n->p.attention.causal;
	int64_t B = as->b, H = as->h, TQ = as->tq, TK = as->tk, D = as->d;
#pragma omp parallel for
	for (int64_t bh = 0; bh < B * H; bh++) {
		int64_t b = bh / H, h = bh % H;
		const REAL *qb = (const REAL *)q->data + b * q->stride[0] + h * q->stride[1];
		const REAL *kb = (const REAL *)k->data + b * k->stride[0] + h * k->stride[1];
		const REAL *vb = (const REAL *)v->data + b * v->stride[0] + h * v->stride[1];
		const int32_t *mb = mask ? mask + b * TK : NULL;
		REAL slope = slopes ? slopes[h] : 0;
		for (int64_t i = 0; i < TQ; i++) {
			int64_t qpos = TK - TQ + i;
			const REAL *qi = qb + i * q->stride[2];
			REAL *p = probs + (bh * TQ + i) * TK;
			REAL mx = -INFINITY;
			int64_t kept = 0; /* kept keys so far, for pos_j */
			for (int64_t j = 0; j < TK; j++) {
				bool ok = !causal || j <= qpos;
				if (mb) {
					kept += mb[j] != 0;
					ok = ok && mb[j] != 0;
				}
				if (!ok) {
					p[j] = -INFINITY;
					continue;
				}
				REAL pos = (REAL)(mb ? kept - 1 : j);
				p[j] = scale * FN(dot)(qi, kb + j * k->stride[2], D) + slope * pos;
				mx = p[j] > mx ? p[j] : mx;
			}
			REAL *oi = out + (bh * TQ + i) * D;
			for (int64_t d = 0; d < D; d++)
				oi[d] = 0;
			if (mx == -INFINITY) { /* every key masked: zeros */
				for (int64_t j = 0; j < TK; j++)
					p[j] = 0;
				continue;
			}
			FN(hug_exp_shift)(TK, p, mx, p); /* masked (-inf) give 0 */
			double sum = 0;
			for (int64_t j = 0; j < TK; j++)
				sum += p[j];
			REAL inv = (REAL)(1.0 / sum);
			for (int64_t j = 0; j < TK; j++) {
				p[j] *= inv;
				REAL pd = p[j] * FN(drop)(n, (bh * TQ + i) * TK + j);
				if (pd == 0)
					continue;
				const REAL *vj = vb + j * v->stride[2];
#pragma omp simd
				for (int64_t d = 0; d < D; d++)
					oi[d] += pd * vj[d];
			}
		}
	}
}

/* With P the saved probabilities, M the dropout factors (1 without dropout)
 * and dO the output gradient, per row i: dV_j += P_ij M_ij dO_i;
 * dP_ij = M_ij dO_i . V_j; dS_ij = P_ij (dP_ij - sum_j P_ij dP_ij);
 * dQ_i += scale sum_j dS_ij K_j; dK_j += scale dS_ij Q_i. dP of a row is
 * kept in the (b, h) row of the scratch tensor saved[1]. */
static void FN(attention_bwd)(const struct attn_shape *as, const struct ag_node *n)
{
	const struct tensor *q = n->in[0], *k = n->in[1], *v = n->in[2];
	const REAL *probs = n->saved[0]->data, *dout = n->out->grad->data;
	REAL *scratch = n->saved[1]->data;
	REAL *dq = q->grad ? q->grad->data : NULL;
	REAL *dk = k->grad ? k->grad->data : NULL;
	REAL *dv = v->grad ? v->grad->data : NULL;
	REAL scale = (REAL)n->p.attention.scale;
	int64_t B = as->b, H = as->h, TQ = as->tq, TK = as->tk, D = as->d;
#pragma omp parallel for
	for (int64_t bh = 0; bh < B * H; bh++) {
		int64_t b = bh / H, h = bh % H;
		const REAL *qb = (const REAL *)q->data + b * q->stride[0] + h * q->stride[1];
		const REAL *kb = (const REAL *)k->data + b * k->stride[0] + h * k->stride[1];
		const REAL *vb = (const REAL *)v->data + b * v->stride[0] + h * v->stride[1];
		/* gradients are contiguous (B, H, T, D) */
		REAL *dqb = dq ? dq + bh * TQ * D : NULL;
		REAL *dkb = dk ? dk + bh * TK * D : NULL;
		REAL *dvb = dv ? dv + bh * TK * D : NULL;
		REAL *dp = scratch + bh * TK;
		for (int64_t i = 0; i < TQ; i++) {
			const REAL *p = probs + (bh * TQ + i) * TK;
			const REAL *doi = dout + (bh * TQ + i) * D;
			const REAL *qi = qb + i * q->stride[2];
			int64_t row = (bh * TQ + i) * TK;
			double rowdot = 0;
			for (int64_t j = 0; j < TK; j++) {
				if (p[j] == 0) {
					dp[j] = 0;
					continue;
				}
				REAL m = FN(drop)(n, row + j);
				dp[j] = m * FN(dot)(doi, vb + j * v->stride[2], D);
				rowdot += (double)p[j] * dp[j];
				if (dvb && m != 0) {
					REAL w = p[j] * m;
					REAL *dvj = dvb + j * D;
#pragma omp simd
					for (int64_t d = 0; d < D; d++)
						dvj[d] += w * doi[d];
				}
			}
			for (int64_t j = 0; j < TK; j++) {
				if (p[j] == 0)
					continue;
				REAL ds = p[j] * (dp[j] - (REAL)rowdot) * scale;
				const REAL *kj = kb + j * k->stride[2];
				if (dqb) {
					REAL *dqi = dqb + i * D;
#pragma omp simd
					for (int64_t d = 0; d < D; d++)
						dqi[d] += ds * kj[d];
				}
				if (dkb) {
					REAL *dkj = dkb + j * D;
#pragma omp simd
					for (int64_t d = 0; d < D; d++)
						dkj[d] += ds * qi[d];
				}
			}
		}
	}
}
