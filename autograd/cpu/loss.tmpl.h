/* loss.tmpl.h: REAL-typed fused log-softmax + cross-entropy with an ignore
 * index (see instantiate.h), also over a vocabulary split across a
 * tensor-parallel group (logits hold the slice [off, off + v)). */
#include <tgmath.h>

#include "fast_math.h"

#define REAL_DT (sizeof(REAL) == 8 ? DT_F64 : DT_F32)

#define XENT_LANES 8

/* The max of x[0..v) (NaNs never win a comparison, as in one running max),
 * over XENT_LANES independent running maxima so the loop is not one long
 * dependency chain; max is exact, so the lanes do not change the result. */
static REAL FN(xent_max)(int64_t v, const REAL *x)
{
	REAL m[XENT_LANES];
	for (int l = 0; l < XENT_LANES; l++)
		m[l] = -INFINITY;
	int64_t i = 0;
	for (; i + XENT_LANES <= v; i += XENT_LANES)
		for (int l = 0; l < XENT_LANES; l++)
			m[l] = x[i + l] > m[l] ? x[i + l] : m[l];
	for (; i < v; i++)
		m[0] = x[i] > m[0] ? x[i] : m[0];
	REAL mx = m[0];
	for (int l = 1; l < XENT_LANES; l++)
		mx = m[l] > mx ? m[l] : mx;
	return mx;
}

/* lse[r] = max of row r's local logits (counted rows). */
static void FN(xent_rowmax)(int64_t rows, int64_t v, const REAL *x, const int32_t *t,
			    int32_t ignore, REAL *lse)
{
#pragma omp parallel for if (rows * v >= CPU_PAR_MIN / 4)
	for (int64_t r = 0; r < rows; r++)
		lse[r] = t[r] == ignore ? 0 : FN(xent_max)(v, x + r * v);
}

#define XENT_CHUNK 256

/* sum_i exp(x[i] - mx) over i < v in double: element i goes to running
 * sum i % XENT_LANES, and the lanes are added in order at the end (a fixed
 * order, so the same bits for any thread count); the exps (hug_expf in
 * f32, see fast_math.h) come a chunk at a time. */
static double FN(xent_sumexp)(int64_t v, const REAL *x, REAL mx)
{
	REAL buf[XENT_CHUNK];
	double s[XENT_LANES] = { 0 };
	for (int64_t i = 0; i < v; i += XENT_CHUNK) {
		int64_t m = v - i < XENT_CHUNK ? v - i : XENT_CHUNK;
		FN(hug_exp_shift)(m, x + i, mx, buf);
		int64_t k = 0;
		for (; k + XENT_LANES <= m; k += XENT_LANES)
			for (int l = 0; l < XENT_LANES; l++)
				s[l] += buf[k + l];
		for (; k < m; k++) /* only in the last chunk: XENT_CHUNK % LANES == 0 */
			s[k % XENT_LANES] += buf[k];
	}
	double total = 0;
	for (int l = 0; l < XENT_LANES; l++)
		total += s[l];
	return total;
}

/* out[r] = sum_i exp(x[r, i] - lse[r]) over the local logits. */
static void FN(xent_rowsum)(int64_t rows, int64_t v, const REAL *x, const int32_t *t,
			    int32_t ignore, const REAL *lse, REAL *out)
{
#pragma omp parallel for if (rows * v >= CPU_PAR_MIN / 4)
	for (int64_t r = 0; r < rows; r++)
		out[r] = t[r] == ignore ? 0 : (REAL)FN(xent_sumexp)(v, x + r * v, lse[r]);
}

/* Forward: lse (rows) gets each counted row's log-sum-exp over the whole
 * vocabulary; tl (rows) is scratch for the vocab-parallel case (NULL
 * otherwise). Returns the mean loss over counted rows; *count their number. */
static double FN(xent_fwd)(int64_t rows, int64_t v, const REAL *x, const int32_t *t,
			   int32_t ignore, REAL *lse, REAL *tl, int64_t off,
			   const struct ag_collective *coll, int64_t *count)
{
	FN(xent_rowmax)(rows, v, x, t, ignore, lse);
	if (coll)
		coll->allreduce(coll->state, lse, rows, REAL_DT, true, DEV_CPU);
	if (tl) {
		FN(xent_rowsum)(rows, v, x, t, ignore, lse, tl);
		coll->allreduce(coll->state, tl, rows, REAL_DT, false, DEV_CPU);
		for (int64_t r = 0; r < rows; r++)
			lse[r] += t[r] == ignore ? 0 : (REAL)log((double)tl[r]);
	} else {
		/* lse[r] holds the row's max until replaced (rows independent) */
#pragma omp parallel for if (rows * v >= CPU_PAR_MIN / 4)
		for (int64_t r = 0; r < rows; r++)
			lse[r] = t[r] == ignore ? 0
				 : lse[r] + (REAL)log(FN(xent_sumexp)(v, x + r * v, lse[r]));
	}
	if (tl) { /* the target's logit: held by one rank of the group */
		for (int64_t r = 0; r < rows; r++) {
			int64_t k = (int64_t)t[r] - off;
			tl[r] = t[r] != ignore && k >= 0 && k < v ? x[r * v + k] : 0;
		}
		coll->allreduce(coll->state, tl, rows, REAL_DT, false, DEV_CPU);
	}
	double total = 0;
	int64_t c = 0;
	for (int64_t r = 0; r < rows; r++) {
		if (t[r] == ignore)
			continue;
		double target = tl ? (double)tl[r] : (double)x[r * v + t[r]];
		total += (double)lse[r] - target;
		c++;
	}
	*count = c;
	return c ? total / (double)c : 0.0;
}

/* dr[i] += g exp(x[i] - lse) for i < v: one row of softmax(x) g. */
FN(CPU_CLONES) static void FN(xent_bwd_row)(int64_t v, const REAL *x, REAL lse, REAL g,
					    REAL *dr)
{
#pragma omp simd
	for (int64_t i = 0; i < v; i++)
		dr[i] += g * FN(cpu_exp)(x[i] - lse);
}

/* dx (rows, v) += g (softmax(x) - onehot(t - off)) on counted rows. */
static void FN(xent_bwd)(int64_t rows, int64_t v, const REAL *x, const int32_t *t,
			 int32_t ignore, const REAL *lse, REAL g, int64_t off, REAL *dx)
{
#pragma omp parallel for if (rows * v >= CPU_PAR_MIN / 4)
	for (int64_t r = 0; r < rows; r++) {
		if (t[r] == ignore)
			continue;
		REAL *dr = dx + r * v;
		FN(xent_bwd_row)(v, x + r * v, lse[r], g, dr);
		int64_t k = (int64_t)t[r] - off;
		if (k >= 0 && k < v)
			dr[k] -= g;
	}
}

static double FN(scalar_get)(const void *p)
{
	return *(const REAL *)p;
}

static void FN(scalar_set)(void *p, double v)
{
	*(REAL *)p = (REAL)v;
}

#undef REAL_DT
#undef XENT_CHUNK
#undef XENT_LANES
