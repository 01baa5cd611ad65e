/* attention.tmpl.h: REAL-typed fused self-attention with an optional ALiBi
 * bias, causal, sliding-window, padding and document-segment masks and
 * grouped key/value heads, materialising the probabilities (see instantiate.h and ag_attention in autograd.h). The forward
 * splits its work over (batch, query head) pairs; the backward over
 * (batch, key/value head) pairs, which touch disjoint gradients, each
 * taking its query heads in turn. k and v are read in place, never copied
 * per query head. Each query head walks its query rows in blocks of
 * CPU_ATTN_ROWS and does the matrix products with single-threaded GEMMs
 * (FN(gemm), attention.c), skipping the keys that the causal mask or the
 * sliding window hides from the whole block. The sequence of GEMM calls
 * of a head does not depend on the thread count. */
#include <tgmath.h>

#include "fast_math.h"

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

/* pos (B, Tk): the ALiBi position of each key, the number of kept keys
 * (key_mask != 0, or every key without a mask) from the start of its run
 * of equal segment ids (of the row without segments) up to it, minus 1:
 * j itself without a mask or segments. Masked keys get a value never used. */
static void FN(attn_positions)(const struct attn_shape *as, const int32_t *mask,
			       const int32_t *segs, REAL *pos)
{
	for (int64_t b = 0; b < as->b; b++) {
		const int32_t *mb = mask ? mask + b * as->tk : NULL;
		const int32_t *sg = segs ? segs + b * as->tk : NULL;
		int64_t kept = 0;
		for (int64_t j = 0; j < as->tk; j++) {
			if (sg && j > 0 && sg[j] != sg[j - 1])
				kept = 0;
			kept += !mb || mb[j] != 0;
			pos[b * as->tk + j] = (REAL)(kept - 1);
		}
	}
}

/* Keys [0, kend) can be kept for query rows [i0, i1): with the causal
 * mask, row i sees keys j <= Tk - Tq + i. */
static inline int64_t FN(attn_kend)(const struct attn_shape *as, bool causal, int64_t i1)
{
	int64_t e = as->tk - as->tq + i1;
	return causal && e < as->tk ? e : as->tk;
}

/* Keys [kbeg, Tk) can be kept for query rows [i0, ...): with a sliding
 * window w (0: none), row i sees keys j > Tk - Tq + i - w. */
static inline int64_t FN(attn_kbeg)(const struct attn_shape *as, int64_t window, int64_t i0)
{
	int64_t b = as->tk - as->tq + i0 - window + 1;
	return window && b > 0 ? b : 0;
}

/* Whether key j is visible to query row i (qpos = Tk - Tq + i): the causal
 * rule, the window, the padding mask mb and the segment ids sg (either may
 * be NULL; sq: the query's segment). */
static inline bool FN(attn_visible)(bool causal, int64_t W, const int32_t *mb,
				     const int32_t *sg, int32_t sq, int64_t qpos, int64_t j)
{
	return (!causal || j <= qpos) && (!W || qpos - j < W) && (!mb || mb[j] != 0) &&
	       (!sg || sg[j] == sq);
}

/* Per (b, h), for each block of rows [i0, i1) with keys [kbeg, kend)
 * (probabilities outside are zero):
 * S = scale Q K^T (GEMM, into the saved probabilities), then row by row
 * the ALiBi bias slope * pos_j (pos_j = j, or with a padding mask the kept
 * keys up to j minus 1), the masks (-inf), the softmax (exp and a double
 * sum) and zeros for keys at or past kend; O = (P M) V (GEMM), with P M
 * formed in the scratch block (n->scratch) when there is dropout. A row whose
 * keys are all masked gets zero probabilities and a zero output; a row
 * with a NaN score among its unmasked keys gets NaN probabilities (and so
 * a NaN output and NaN gradients), never zeros. */
static void FN(attention_fwd)(const struct attn_shape *as, const struct ag_node *n)
{
	const struct tensor *q = n->in[0], *k = n->in[1], *v = n->in[2];
	const REAL *slopes = n->in[3] ? n->in[3]->data : NULL;
	const int32_t *mask = n->in[4] ? n->in[4]->data : NULL;
	const int32_t *segs = n->in[5] ? n->in[5]->data : NULL;
	REAL *out = n->out->data, *probs = n->saved[0]->data;
	REAL *pos = n->scratch ? n->scratch->data : NULL; /* (B, Tk) positions */
	REAL *scratch = pos ? pos + attn_pos_numel(as) : NULL; /* NULL: no rows */
	REAL scale = (REAL)n->p.attention.scale;
	bool causal = n->p.attention.causal, dropout = n->p.attention.p != 0.0;
	int64_t W = n->p.attention.window;
	int64_t B = as->b, H = as->h, TQ = as->tq, TK = as->tk, D = as->d;
	int64_t G = as->group;
	int64_t R = TQ < CPU_ATTN_ROWS ? TQ : CPU_ATTN_ROWS;
	int64_t qs = attn_ld(q, D), ks = attn_ld(k, D), vs = attn_ld(v, D);
	if (slopes)
		FN(attn_positions)(as, mask, segs, pos);
	/* each (b, h) writes only its own rows of out, probs and scratch, so
	 * the forward splits over query heads (all threads busy even with few
	 * key/value heads, as multi-query decoding has) */
#pragma omp parallel for schedule(static)
	for (int64_t bh = 0; bh < B * H; bh++) {
		int64_t b = bh / H, h = bh % H, hkv = h / G;
		const REAL *qb = (const REAL *)q->data + b * q->stride[0] + h * q->stride[1];
		const REAL *kb = (const REAL *)k->data + b * k->stride[0] + hkv * k->stride[1];
		const REAL *vb = (const REAL *)v->data + b * v->stride[0] + hkv * v->stride[1];
		const int32_t *mb = mask ? mask + b * TK : NULL;
		const int32_t *sg = segs ? segs + b * TK : NULL;
		const REAL *pb = slopes ? pos + b * TK : NULL;
		REAL slope = slopes ? slopes[h] : 0;
		REAL *sc = scratch + bh * R * TK; /* (R, Tk) */
		for (int64_t i0 = 0; i0 < TQ; i0 += R) {
			int64_t nr = TQ - i0 < R ? TQ - i0 : R;
			int64_t kend = FN(attn_kend)(as, causal, i0 + nr);
			int64_t kbeg = FN(attn_kbeg)(as, W, i0), nk = kend - kbeg;
			REAL *prb = probs + (bh * TQ + i0) * TK; /* (nr, Tk) */
			bool dead[CPU_ATTN_ROWS];
			/* S (nr, nk) = scale Q_blk (nr, D) K^T (D, nk), keys [kbeg, kend) */
			FN(gemm)(false, true, nr, nk, D, scale, qb + i0 * q->stride[2], qs,
				 kb + kbeg * ks, ks, 0, prb + kbeg, TK);
			for (int64_t r = 0; r < nr; r++) {
				int64_t i = i0 + r, qpos = TK - TQ + i;
				int32_t sq = sg ? sg[qpos] : 0;
				REAL *p = prb + r * TK;
				REAL mx = -INFINITY;
				for (int64_t j = 0; j < kbeg; j++)
					p[j] = 0;
				for (int64_t j = kbeg; j < kend; j++) {
					if (!FN(attn_visible)(causal, W, mb, sg, sq, qpos, j)) {
						p[j] = -INFINITY;
						continue;
					}
					if (pb)
						p[j] += slope * pb[j];
					/* a NaN score sticks in mx: the row goes NaN, not dead */
					mx = p[j] > mx || isnan(p[j]) ? p[j] : mx;
				}
				for (int64_t j = kend; j < TK; j++)
					p[j] = 0;
				dead[r] = mx == -INFINITY;
				if (dead[r]) { /* every key masked: zeros */
					for (int64_t j = kbeg; j < kend; j++)
						p[j] = 0;
					continue;
				}
				/* masked (-inf) give 0 */
				FN(hug_softmax_shift)(nk, p + kbeg, mx, p + kbeg);
				if (dropout)
					for (int64_t j = kbeg; j < kend; j++)
						sc[r * TK + j] = p[j] * FN(drop)(n, (bh * TQ + i) * TK + j);
			}
			if (dropout) /* dead rows' probabilities are zero */
				for (int64_t r = 0; r < nr; r++)
					if (dead[r])
						for (int64_t j = kbeg; j < kend; j++)
							sc[r * TK + j] = 0;
			/* O_blk (nr, D) = (P M)_blk (nr, nk) V (nk, D), keys [kbeg, kend) */
			REAL *ob = out + (bh * TQ + i0) * D;
			FN(gemm)(false, false, nr, D, nk, 1, (dropout ? sc : prb) + kbeg, TK,
				 vb + kbeg * vs, vs, 0, ob, D);
			for (int64_t r = 0; r < nr; r++)
				if (dead[r])
					for (int64_t d = 0; d < D; d++)
						ob[r * D + d] = 0;
		}
	}
}

/* With P the saved probabilities, M the dropout factors (1 without dropout)
 * and dO the output gradient, per (b, h) and block of rows [i0, i1) with
 * keys [kbeg, kend) (P is zero outside), by GEMMs accumulating into the
 * gradients that exist: dV += (P M)^T dO; dP = M (dO V^T);
 * dS_ij = P_ij (dP_ij - sum_j P_ij dP_ij) scale (0 where P_ij = 0, the
 * row sum in double); dQ += dS K; dK += dS^T Q. P M, then dP and dS, live
 * in the (b, h) block of the scratch n->scratch. */
static void FN(attention_bwd)(const struct attn_shape *as, const struct ag_node *n)
{
	const struct tensor *q = n->in[0], *k = n->in[1], *v = n->in[2];
	const REAL *probs = n->saved[0]->data, *dout = n->out->grad->data;
	REAL *scratch = n->scratch ? (REAL *)n->scratch->data + attn_pos_numel(as) : NULL;
	REAL *dq = q->grad ? q->grad->data : NULL;
	REAL *dk = k->grad ? k->grad->data : NULL;
	REAL *dv = v->grad ? v->grad->data : NULL;
	REAL scale = (REAL)n->p.attention.scale;
	bool causal = n->p.attention.causal, dropout = n->p.attention.p != 0.0;
	int64_t W = n->p.attention.window;
	int64_t B = as->b, H = as->h, TQ = as->tq, TK = as->tk, D = as->d;
	int64_t G = as->group, HKV = H / G;
	int64_t R = TQ < CPU_ATTN_ROWS ? TQ : CPU_ATTN_ROWS;
	int64_t qs = attn_ld(q, D), ks = attn_ld(k, D), vs = attn_ld(v, D);
	/* the query heads of a key/value head run in turn in one thread, so
	 * their dK and dV sums need no atomics and keep one order */
#pragma omp parallel for schedule(static)
	for (int64_t bkv = 0; bkv < B * HKV; bkv++)
	for (int64_t hg = 0; hg < G; hg++) {
		int64_t b = bkv / HKV, hkv = bkv % HKV, h = hkv * G + hg, bh = b * H + h;
		const REAL *qb = (const REAL *)q->data + b * q->stride[0] + h * q->stride[1];
		const REAL *kb = (const REAL *)k->data + b * k->stride[0] + hkv * k->stride[1];
		const REAL *vb = (const REAL *)v->data + b * v->stride[0] + hkv * v->stride[1];
		/* gradients are contiguous: dQ (B, H, Tq, D), dK and dV (B, Hkv, Tk, D) */
		REAL *dqb = dq ? dq + bh * TQ * D : NULL;
		REAL *dkb = dk ? dk + bkv * TK * D : NULL;
		REAL *dvb = dv ? dv + bkv * TK * D : NULL;
		REAL *sc = scratch + bh * R * TK; /* (R, Tk) */
		for (int64_t i0 = 0; i0 < TQ; i0 += R) {
			int64_t nr = TQ - i0 < R ? TQ - i0 : R;
			int64_t kend = FN(attn_kend)(as, causal, i0 + nr);
			int64_t kbeg = FN(attn_kbeg)(as, W, i0), nk = kend - kbeg;
			const REAL *pb = probs + (bh * TQ + i0) * TK; /* (nr, Tk) */
			const REAL *dob = dout + (bh * TQ + i0) * D;  /* (nr, D) */
			/* the products below run over keys [kbeg, kend) */
			if (dvb) { /* dV (nk, D) += (P M)^T (nk, nr) dO_blk (nr, D) */
				if (dropout)
					for (int64_t r = 0; r < nr; r++)
						for (int64_t j = kbeg; j < kend; j++) {
							REAL p = pb[r * TK + j];
							sc[r * TK + j] = p == 0 ? 0 :
								p * FN(drop)(n, (bh * TQ + i0 + r) * TK + j);
						}
				FN(gemm)(true, false, nk, D, nr, 1, (dropout ? sc : pb) + kbeg, TK,
					 dob, D, 1, dvb + kbeg * D, D);
			}
			if (!dqb && !dkb)
				continue;
			/* dP (nr, nk) = dO_blk (nr, D) V^T (D, nk), then M and dS */
			FN(gemm)(false, true, nr, nk, D, 1, dob, D, vb + kbeg * vs, vs, 0,
				 sc + kbeg, TK);
			for (int64_t r = 0; r < nr; r++) {
				const REAL *p = pb + r * TK;
				REAL *s = sc + r * TK;
				int64_t row = (bh * TQ + i0 + r) * TK;
				double rowdot = 0;
				for (int64_t j = kbeg; j < kend; j++) {
					if (p[j] == 0) {
						s[j] = 0;
						continue;
					}
					if (dropout)
						s[j] *= FN(drop)(n, row + j);
					rowdot += (double)p[j] * s[j];
				}
				for (int64_t j = kbeg; j < kend; j++)
					s[j] = p[j] == 0 ? 0 : p[j] * (s[j] - (REAL)rowdot) * scale;
			}
			if (dqb) /* dQ_blk (nr, D) += dS (nr, nk) K (nk, D) */
				FN(gemm)(false, false, nr, D, nk, 1, sc + kbeg, TK, kb + kbeg * ks, ks,
					 1, dqb + i0 * D, D);
			if (dkb) /* dK (nk, D) += dS^T (nk, nr) Q_blk (nr, D) */
				FN(gemm)(true, false, nk, D, nr, 1, sc + kbeg, TK,
					 qb + i0 * q->stride[2], qs, 1, dkb + kbeg * D, D);
		}
	}
}
