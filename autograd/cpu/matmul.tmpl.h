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

/* db (cols) += sum over rows of dy (rows, cols); columns split across
 * threads, rows summed in order, so the result is deterministic. */
static void FN(rows_sum_into)(REAL *db, const REAL *dy, int64_t rows, int64_t cols)
{
#pragma omp parallel for if (rows * cols >= CPU_PAR_MIN)
	for (int64_t c = 0; c < cols; c++) {
		REAL s = 0;
		for (int64_t r = 0; r < rows; r++)
			s += dy[r * cols + c];
		db[c] += s;
	}
}
