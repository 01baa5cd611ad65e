/* embedding.tmpl.h: REAL-typed embedding lookup and its deterministic
 * backward (see instantiate.h). */

/* out (n, c) = w[ids[i]] row by row. */
static void FN(embedding_fwd)(int64_t n, int64_t c, const int32_t *ids,
			      const REAL *w, REAL *out)
{
#pragma omp parallel for if (n * c >= CPU_PAR_MIN)
	for (int64_t i = 0; i < n; i++)
		for (int64_t j = 0; j < c; j++)
			out[i * c + j] = w[(int64_t)ids[i] * c + j];
}

/* dw[ids[i]] += dout[i]; threads split the columns and walk the ids in
 * order, so sums are formed in the same order on every run. */
static void FN(embedding_bwd)(int64_t n, int64_t c, const int32_t *ids,
			      const REAL *dout, REAL *dw)
{
	int64_t nblk = (c + 63) / 64;
#pragma omp parallel for if (n * c >= CPU_PAR_MIN)
	for (int64_t b = 0; b < nblk; b++) {
		int64_t lo = b * 64, hi = lo + 64 < c ? lo + 64 : c;
		for (int64_t i = 0; i < n; i++) {
			REAL *row = dw + (int64_t)ids[i] * c;
			for (int64_t j = lo; j < hi; j++)
				row[j] += dout[i * c + j];
		}
	}
}
