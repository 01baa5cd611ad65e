/* attention_tiled.tmpl.h: REAL-typed tiled self-attention (flash-attention
 * style) with the same masks, ALiBi bias, grouped key/value heads, packed
 * document segments and dropout as the exact kernel (attention.tmpl.h; see
 * ag_attention in autograd.h). The (Tq, Tk) probabilities are never
 * materialised: each block of CPU_ATTN_ROWS query rows walks tiles of
 * CPU_ATTN_COLS keys with an online softmax (running max m and sum l,
 * the accumulated output rescaled when the max grows), and saves only the
 * output and the row's log-sum-exp lse = m + log l. The backward
 * recomputes each tile's probabilities P = exp(s - lse) and uses
 * D_i = dO_i . O_i for the softmax's row sum (with dropout too: O already
 * holds the dropped probabilities). The matrix products are
 * single-threaded GEMMs (FN(gemm), attention.c), as in the exact kernel;
 * the forward splits over (batch, query head), the backward over (batch,
 * key/value head) with its query heads in turn (no atomics, one order). */
#include <tgmath.h>

#include "fast_math.h"

/* FN(attn_visible), FN(attn_positions), FN(attn_kend), FN(attn_kbeg): the
 * mask rules both kernels share, in attention.tmpl.h (instantiated first). */

/* Per (b, h, block of rows): S = scale Q K^T per tile of keys, the bias,
 * the masks, the online softmax and O += (P M) V; at the end O /= l and
 * lse = m + log l (-inf for a row whose keys are all masked, with a zero
 * output; NaN scores stick in m and give a NaN row). */
static void FN(attention_tiled_fwd)(const struct attn_shape *as, const struct ag_node *n)
{
	const struct tensor *q = n->in[0], *k = n->in[1], *v = n->in[2];
	const REAL *slopes = n->in[3] ? n->in[3]->data : NULL;
	const int32_t *mask = n->in[4] ? n->in[4]->data : NULL;
	const int32_t *segs = n->in[5] ? n->in[5]->data : NULL;
	REAL *out = n->out->data, *lse = n->saved[0]->data;
	REAL *scratch = n->scratch ? n->scratch->data : NULL;
	REAL scale = (REAL)n->p.attention.scale;
	bool causal = n->p.attention.causal, dropout = n->p.attention.p != 0.0;
	int64_t W = n->p.attention.window;
	int64_t B = as->b, H = as->h, TQ = as->tq, TK = as->tk, D = as->d;
	int64_t G = as->group, R = CPU_ATTN_ROWS, C = CPU_ATTN_COLS;
	int64_t qs = attn_ld(q, D), ks = attn_ld(k, D), vs = attn_ld(v, D);
	REAL *pos = scratch; /* (B, Tk) ALiBi positions */
	REAL *tiles = scratch + attn_pos_numel(as);
	if (slopes)
		FN(attn_positions)(as, mask, segs, pos);
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
		REAL *S = tiles + bh * attn_tile_numel(as); /* (R, C) */
		REAL *acc = S + R * C;                      /* (R, D) */
		for (int64_t i0 = 0; i0 < TQ; i0 += R) {
			int64_t nr = TQ - i0 < R ? TQ - i0 : R;
			int64_t kend = FN(attn_kend)(as, causal, i0 + nr);
			int64_t kbeg = FN(attn_kbeg)(as, W, i0);
			REAL m[CPU_ATTN_ROWS];
			double l[CPU_ATTN_ROWS];
			for (int64_t r = 0; r < nr; r++) {
				m[r] = -INFINITY;
				l[r] = 0;
			}
			memset(acc, 0, (size_t)(nr * D) * sizeof(REAL));
			for (int64_t j0 = kbeg; j0 < kend; j0 += C) {
				int64_t nc = kend - j0 < C ? kend - j0 : C;
				/* S (nr, nc) = scale Q_blk (nr, D) K_tile^T (D, nc) */
				FN(gemm)(false, true, nr, nc, D, scale, qb + i0 * q->stride[2], qs,
					 kb + j0 * ks, ks, 0, S, C);
				for (int64_t r = 0; r < nr; r++) {
					int64_t i = i0 + r, qpos = TK - TQ + i;
					int32_t sq = sg ? sg[qpos] : 0;
					REAL *s = S + r * C, mx = -INFINITY;
					for (int64_t c = 0; c < nc; c++) {
						int64_t j = j0 + c;
						if (!FN(attn_visible)(causal, W, mb, sg, sq, qpos, j)) {
							s[c] = -INFINITY;
							continue;
						}
						if (pb)
							s[c] += slope * pb[j];
						mx = s[c] > mx || isnan(s[c]) ? s[c] : mx;
					}
					REAL mnew = isnan(m[r]) || isnan(mx) ? (REAL)NAN
						    : m[r] > mx ? m[r] : mx;
					if (mnew == -INFINITY) { /* nothing visible yet */
						for (int64_t c = 0; c < nc; c++)
							s[c] = 0;
						continue;
					}
					if (mnew != m[r] && m[r] != -INFINITY) {
						REAL alpha = FN(cpu_exp)(m[r] - mnew);
						l[r] *= alpha;
						for (int64_t d = 0; d < D; d++)
							acc[r * D + d] *= alpha;
					}
					m[r] = mnew;
					FN(hug_exp_shift)(nc, s, mnew, s); /* -inf gives 0 */
					double sum = 0;
					for (int64_t c = 0; c < nc; c++)
						sum += s[c];
					for (int64_t c = 0; dropout && c < nc; c++)
						if (s[c] != 0)
							s[c] *= FN(drop)(n, (bh * TQ + i) * TK + j0 + c);
					l[r] += sum;
				}
				/* acc (nr, D) += (P M) (nr, nc) V_tile (nc, D) */
				FN(gemm)(false, false, nr, D, nc, 1, S, C, vb + j0 * vs, vs, 1, acc, D);
			}
			REAL *ob = out + (bh * TQ + i0) * D;
			REAL *lb = lse + bh * TQ + i0;
			for (int64_t r = 0; r < nr; r++) {
				if (m[r] == -INFINITY) { /* every key masked: zeros */
					for (int64_t d = 0; d < D; d++)
						ob[r * D + d] = 0;
					lb[r] = -INFINITY;
					continue;
				}
				REAL inv = (REAL)(1.0 / l[r]);
				for (int64_t d = 0; d < D; d++)
					ob[r * D + d] = acc[r * D + d] * inv;
				lb[r] = (REAL)((double)m[r] + log(l[r]));
			}
		}
	}
}

/* Per (b, key/value head), its query heads in turn, per block of rows and
 * tile of keys: P = exp(S - lse) (0 where masked or the row is dead),
 * dV += (P M)^T dO; dP = M (dO V^T); dS = P (dP - D_i) scale with
 * D_i = dO_i . O_i (double); dQ += dS K; dK += dS^T Q. */
static void FN(attention_tiled_bwd)(const struct attn_shape *as, const struct ag_node *n)
{
	const struct tensor *q = n->in[0], *k = n->in[1], *v = n->in[2];
	const REAL *slopes = n->in[3] ? n->in[3]->data : NULL;
	const int32_t *mask = n->in[4] ? n->in[4]->data : NULL;
	const int32_t *segs = n->in[5] ? n->in[5]->data : NULL;
	const REAL *lse = n->saved[0]->data, *out = n->out->data;
	const REAL *dout = n->out->grad->data;
	REAL *scratch = n->scratch ? n->scratch->data : NULL;
	REAL *dq = q->grad ? q->grad->data : NULL;
	REAL *dk = k->grad ? k->grad->data : NULL;
	REAL *dv = v->grad ? v->grad->data : NULL;
	REAL scale = (REAL)n->p.attention.scale;
	bool causal = n->p.attention.causal, dropout = n->p.attention.p != 0.0;
	int64_t W = n->p.attention.window;
	int64_t B = as->b, H = as->h, TQ = as->tq, TK = as->tk, D = as->d;
	int64_t G = as->group, HKV = H / G, R = CPU_ATTN_ROWS, C = CPU_ATTN_COLS;
	int64_t qs = attn_ld(q, D), ks = attn_ld(k, D), vs = attn_ld(v, D);
	REAL *pos = scratch;
	REAL *tiles = scratch + attn_pos_numel(as);
	if (!dq && !dk && !dv)
		return;
	if (slopes)
		FN(attn_positions)(as, mask, segs, pos);
#pragma omp parallel for schedule(static)
	for (int64_t bkv = 0; bkv < B * HKV; bkv++)
	for (int64_t hg = 0; hg < G; hg++) {
		int64_t b = bkv / HKV, hkv = bkv % HKV, h = hkv * G + hg, bh = b * H + h;
		const REAL *qb = (const REAL *)q->data + b * q->stride[0] + h * q->stride[1];
		const REAL *kb = (const REAL *)k->data + b * k->stride[0] + hkv * k->stride[1];
		const REAL *vb = (const REAL *)v->data + b * v->stride[0] + hkv * v->stride[1];
		const int32_t *mb = mask ? mask + b * TK : NULL;
		const int32_t *sg = segs ? segs + b * TK : NULL;
		const REAL *pb = slopes ? pos + b * TK : NULL;
		REAL slope = slopes ? slopes[h] : 0;
		REAL *dqb = dq ? dq + bh * TQ * D : NULL;
		REAL *dkb = dk ? dk + bkv * TK * D : NULL;
		REAL *dvb = dv ? dv + bkv * TK * D : NULL;
		/* this thread's tiles: those of (b, first query head of the group) */
		REAL *P = tiles + (b * H + hkv * G) * attn_tile_numel(as); /* (R, C) */
		REAL *T2 = P + R * C;                                      /* (R, C) */
		for (int64_t i0 = 0; i0 < TQ; i0 += R) {
			int64_t nr = TQ - i0 < R ? TQ - i0 : R;
			int64_t kend = FN(attn_kend)(as, causal, i0 + nr);
			int64_t kbeg = FN(attn_kbeg)(as, W, i0);
			const REAL *dob = dout + (bh * TQ + i0) * D; /* (nr, D) */
			const REAL *ob = out + (bh * TQ + i0) * D;
			const REAL *lb = lse + bh * TQ + i0;
			REAL drow[CPU_ATTN_ROWS];
			for (int64_t r = 0; r < nr; r++) {
				double t = 0;
				for (int64_t d = 0; d < D; d++)
					t += (double)dob[r * D + d] * ob[r * D + d];
				drow[r] = (REAL)t;
			}
			for (int64_t j0 = kbeg; j0 < kend; j0 += C) {
				int64_t nc = kend - j0 < C ? kend - j0 : C;
				FN(gemm)(false, true, nr, nc, D, scale, qb + i0 * q->stride[2], qs,
					 kb + j0 * ks, ks, 0, P, C);
				for (int64_t r = 0; r < nr; r++) {
					int64_t qpos = TK - TQ + i0 + r;
					int32_t sq = sg ? sg[qpos] : 0;
					REAL *p = P + r * C;
					if (lb[r] == -INFINITY) { /* every key masked */
						for (int64_t c = 0; c < nc; c++)
							p[c] = 0;
						continue;
					}
					for (int64_t c = 0; c < nc; c++) {
						int64_t j = j0 + c;
						if (!FN(attn_visible)(causal, W, mb, sg, sq, qpos, j))
							p[c] = -INFINITY;
						else if (pb)
							p[c] += slope * pb[j];
					}
					FN(hug_exp_shift)(nc, p, lb[r], p); /* -inf gives 0 */
				}
				if (dvb) { /* dV_tile (nc, D) += (P M)^T (nc, nr) dO_blk (nr, D) */
					const REAL *pm = P;
					if (dropout) {
						for (int64_t r = 0; r < nr; r++)
							for (int64_t c = 0; c < nc; c++) {
								REAL pv = P[r * C + c];
								T2[r * C + c] = pv == 0 ? 0 : pv * FN(drop)(n,
									(bh * TQ + i0 + r) * TK + j0 + c);
							}
						pm = T2;
					}
					FN(gemm)(true, false, nc, D, nr, 1, pm, C, dob, D, 1,
						 dvb + j0 * D, D);
				}
				if (!dqb && !dkb)
					continue;
				/* dP (nr, nc) = dO_blk (nr, D) V_tile^T (D, nc), then M and dS */
				FN(gemm)(false, true, nr, nc, D, 1, dob, D, vb + j0 * vs, vs, 0, T2, C);
				for (int64_t r = 0; r < nr; r++) {
					int64_t row = (bh * TQ + i0 + r) * TK + j0;
					REAL *s = T2 + r * C;
					const REAL *p = P + r * C;
					for (int64_t c = 0; c < nc; c++) {
						if (p[c] == 0) {
							s[c] = 0;
							continue;
						}
						REAL dp = dropout ? s[c] * FN(drop)(n, row + c) : s[c];
						s[c] = p[c] * (dp - drow[r]) * scale;
					}
				}
				if (dqb) /* dQ_blk (nr, D) += dS (nr, nc) K_tile (nc, D) */
					FN(gemm)(false, false, nr, D, nc, 1, T2, C, kb + j0 * ks, ks, 1,
						 dqb + i0 * D, D);
				if (dkb) /* dK_tile (nc, D) += dS^T (nc, nr) Q_blk (nr, D) */
					FN(gemm)(true, false, nc, D, nr, 1, T2, C,
						 qb + i0 * q->stride[2], qs, 1, dkb + j0 * D, D);
			}
		}
	}
}
