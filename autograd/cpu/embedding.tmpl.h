/* embedding.tmpl.h: REAL-typed embedding lookup and its deterministic
 * backward (see instantiate.h). */

/* out (n, c) = w[ids[i] - off] row by row; ids outside the rows [off,
 * off + rows) of this shard give zeros. */
static void FN(embedding_fwd)(int64_t n, int64_t c, const int32_t *ids, int64_t off,
			      int64_t rows, const REAL *w, REAL *out)
{
#pragma omp parallel for if (n * c >= CPU_PAR_MIN)
	for (int64_t i = 0; i < n; i++) {
		int64_t r = (int64_t)ids[i] - off;
		bool in = r >= 0 && r < rows;
		for (int64_t j = 0; j < c; j++)
			out[i * c + j] = in ? w[r * c + j] : (REAL)0;
	}
}

/* dw[ids[i]] += dout[i]; threads split the columns and walk the ids in
 * order, so sums are formed in the same order on every run. */
static void FN(embedding_bwd)(int64_t n, int64_t c, const int32_t *ids, int64_t off,
			      int64_t rows, const REAL *dout, REAL *dw)
{
	int64_t nblk = (c + 63) / 64;
#pragma omp parallel for if (n * c >= CPU_PAR_MIN)
	for (int64_t b = 0; b < nblk; b++) {
		int64_t lo = b * 64, hi = lo + 64 < c ? lo + 64 : c;
		for (int64_t i = 0; i < n; i++) {
			int64_t r = (int64_t)ids[i] - off;
			if (r < 0 || r >= rows)
				continue;
			REAL *row = dw + r * c;
			for (int64_t j = lo; j < hi; j++)
				row[j] += dout[i * c + j];
		}
	}
}
