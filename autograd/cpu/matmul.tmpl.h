/* matmul.tmpl.h: REAL-typed helpers of the matrix-product kernels (see
 * instantiate.h): bias broadcast into rows and the bias gradient. */

/* y (rows, cols) = bias broadcast over rows. */
static void FN(rows_set)(REAL *y, const REAL *bias, int64_t rows, int64_t cols)
{
#pragma omp parallel for if (rows * cols >= CPU_PAR_MIN)
	for (int64_t r = 0; r < rows; r++)
		for (int64_t c = 0; c < cols; c++)
			y[r * cols + c] = bias[c];
}

/* db (cols) += sum over rows of dy (rows, cols); blocks of 16 columns
 * split across threads, each column summed over the rows in order (in
 * REAL), so the result is deterministic and independent of the thread
 * count; a block reads each row's 16 columns contiguously. */
static void FN(rows_sum_into)(REAL *db, const REAL *dy, int64_t rows, int64_t cols)
{
	int64_t nblk = (cols + 15) / 16;
#pragma omp parallel for if (rows * cols >= CPU_PAR_MIN)
	for (int64_t b = 0; b < nblk; b++) {
		int64_t lo = b * 16, n = lo + 16 < cols ? 16 : cols - lo;
		REAL s[16] = { 0 };
		for (int64_t r = 0; r < rows; r++) {
			const REAL *d = dy + r * cols + lo;
			for (int64_t i = 0; i < n; i++)
				s[i] += d[i];
		}
		for (int64_t i = 0; i < n; i++)
			db[lo + i] += s[i];
	}
}
