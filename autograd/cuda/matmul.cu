// matmul.cu: batched matmul and linear on cuBLAS (autograd/cpu/matmul.c,
// product for product). f32 uses CUBLAS_COMPUTE_32F with the default math
// mode (no TF32), so results match the CPU's sgemm to rounding; bf16
// operands accumulate in f32 and round once on store. Row-major products
// are computed as the column-major transposed product (C^T = B^T A^T).
//
// Determinism: cuBLAS gives the same bits on every run for the same shapes,
// GPU model and library version on one stream with atomics disallowed
// (runtime.cu sets both). Where the CPU sums several products into one
// gradient (a shared right operand with a transposed left one), the
// products run one after another, in batch order.
#include <climits>

#include "colsum.cuh"
#include "common.cuh"
extern "C" {
#include "../node_dims.h"
}

static cudaDataType_t cu_type(enum dtype dt)
{
	switch (dt) {
	case DT_F32: return CUDA_R_32F;
	case DT_BF16: return CUDA_R_16BF;
	default: hug_panic("cuda: matmul of %s tensors", dtype_name(dt));
	}
}

// cu_gemm (common.cuh)
void cu_gemm(enum dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
	     const void *a, int64_t lda, int64_t sa, const void *b, int64_t ldb, int64_t sb,
	     float beta, void *c, int64_t ldc, int64_t sc, int64_t count)
{
	if (m == 0 || n == 0 || count == 0)
		return;
	if (k == 0) {
		HUG_ASSERT(beta == 1.0f);
		return;
	}
	HUG_ASSERT(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX &&
		   ldb <= INT_MAX && ldc <= INT_MAX && count <= INT_MAX);
	cudaDataType_t t = cu_type(dt);
	cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
	cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
	if (count == 1)
		CUBLAS_CHECK(cublasGemmEx(cu_blas(), opb, opa, (int)n, (int)m, (int)k, &alpha,
					  b, t, (int)ldb, a, t, (int)lda, &beta, c, t, (int)ldc,
					  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
	else
		CUBLAS_CHECK(cublasGemmStridedBatchedEx(
			cu_blas(), opb, opa, (int)n, (int)m, (int)k, &alpha, b, t, (int)ldb,
			(long long)sb, a, t, (int)lda, (long long)sa, &beta, c, t, (int)ldc,
			(long long)sc, (int)count, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}


extern "C" void cuda_matmul_forward(struct ag_node *nd)
{
	const struct tensor *a = nd->in[0], *b = nd->in[1];
	struct tensor *c = nd->out;
	bool ta = nd->p.matmul.trans_a, tb = nd->p.matmul.trans_b;
	struct ag_mm_dims d = ag_mm_dims_of(nd);
	int64_t lda = ta ? d.m : d.k, ldb = tb ? d.k : d.n;
	if (d.k == 0) { // an empty sum: zeros
		cuda_fill(c, 0.0);
		return;
	}
	if (d.b_shared && !ta) // (batch*M, K) @ op(B): one product
		cu_gemm(c->dtype, false, tb, d.batch * d.m, d.n, d.k, 1.0f, a->data, lda, 0, b->data,
		     ldb, 0, 0.0f, c->data, d.n, 0, 1);
	else
		cu_gemm(c->dtype, ta, tb, d.m, d.n, d.k, 1.0f, a->data, lda, d.m * d.k, b->data, ldb,
		     d.b_shared ? 0 : d.k * d.n, 0.0f, c->data, d.n, d.m * d.n, d.batch);
}

extern "C" void cuda_matmul_backward(struct ag_node *nd)
{
	const struct tensor *a = nd->in[0], *b = nd->in[1], *dc = nd->out->grad;
	struct tensor *da = a->grad, *db = b->grad;
	bool ta = nd->p.matmul.trans_a, tb = nd->p.matmul.trans_b;
	struct ag_mm_dims d = ag_mm_dims_of(nd);
	enum dtype dt = dc->dtype;
	int64_t lda = ta ? d.m : d.k, ldb = tb ? d.k : d.n;
	int64_t sb = d.b_shared ? 0 : d.k * d.n;
	if (da) {
		if (!ta) // dA (M, K) += dC op(B)^T
			cu_gemm(dt, false, !tb, d.m, d.k, d.n, 1.0f, dc->data, d.n, d.m * d.n, b->data,
			     ldb, sb, 1.0f, da->data, d.k, d.m * d.k, d.batch);
		else // dA (K, M) += op(B) dC^T
			cu_gemm(dt, tb, true, d.k, d.m, d.n, 1.0f, b->data, ldb, sb, dc->data, d.n,
			     d.m * d.n, 1.0f, da->data, d.m, d.m * d.k, d.batch);
	}
	if (!db)
		return;
	if (d.b_shared && !ta && !tb) { // dB (K, N) += A^T dC over all rows
		cu_gemm(dt, true, false, d.k, d.n, d.batch * d.m, 1.0f, a->data, lda, 0, dc->data, d.n,
		     0, 1.0f, db->data, d.n, 0, 1);
		return;
	}
	if (d.b_shared && !ta && tb) { // dB (N, K) += dC^T A over all rows
		cu_gemm(dt, true, false, d.n, d.k, d.batch * d.m, 1.0f, dc->data, d.n, 0, a->data, lda,
		     0, 1.0f, db->data, d.k, 0, 1);
		return;
	}
	if (!d.b_shared) { // one dB per batch: a batched product
		if (!tb) // dB (K, N) += op(A)^T dC
			cu_gemm(dt, !ta, false, d.k, d.n, d.m, 1.0f, a->data, lda, d.m * d.k, dc->data,
			     d.n, d.m * d.n, 1.0f, db->data, d.n, d.k * d.n, d.batch);
		else // dB (N, K) += dC^T op(A)
			cu_gemm(dt, true, ta, d.n, d.k, d.m, 1.0f, dc->data, d.n, d.m * d.n, a->data,
			     lda, d.m * d.k, 1.0f, db->data, d.k, d.k * d.n, d.batch);
		return;
	}
	// shared B with a transposed A: every batch adds into the same dB, in
	// batch order
	for (int64_t i = 0; i < d.batch; i++) {
		const void *ai = cu_elem(a->data, dt, i * d.m * d.k);
		const void *dci = cu_elem(dc->data, dt, i * d.m * d.n);
		if (!tb)
			cu_gemm(dt, !ta, false, d.k, d.n, d.m, 1.0f, ai, lda, 0, dci, d.n, 0, 1.0f,
			     db->data, d.n, 0, 1);
		else
			cu_gemm(dt, true, ta, d.n, d.k, d.m, 1.0f, dci, d.n, 0, ai, lda, 0, 1.0f,
			     db->data, d.k, 0, 1);
	}
}

// ---- linear ----

// y (rows, cols) = bias broadcast over rows
template <typename T>
__global__ void rows_set_k(T *y, const T *bias, int64_t rows, int64_t cols)
{
	CU_FOR(e, rows * cols)
		y[e] = bias[e % cols];
}

extern "C" void cuda_linear_forward(struct ag_node *nd)
{
	const struct tensor *x = nd->in[0], *w = nd->in[1], *bias = nd->in[2];
	struct tensor *y = nd->out;
	int64_t in = w->shape[1], out = w->shape[0];
	int64_t rows = in ? tensor_numel(x) / in : tensor_numel(y) / (out ? out : 1);
	if (bias && rows > 0 && out > 0) {
		CU_FLOAT_DISPATCH(y->dtype, T,
			rows_set_k<T><<<cu_blocks(rows * out), CU_THREADS, 0, cu_stream()>>>(
				(T *)y->data, (const T *)bias->data, rows, out));
		CUDA_LAUNCH_CHECK();
	}
	if (in == 0) {
		if (!bias)
			cuda_fill(y, 0.0);
		return;
	}
	cu_gemm(y->dtype, false, true, rows, out, in, 1.0f, x->data, in, 0, w->data, in, 0,
	     bias ? 1.0f : 0.0f, y->data, out, 0, 1);
}

extern "C" void cuda_linear_backward(struct ag_node *nd)
{
	const struct tensor *x = nd->in[0], *w = nd->in[1], *bias = nd->in[2];
	const struct tensor *dy = nd->out->grad;
	int64_t in = w->shape[1], out = w->shape[0];
	int64_t rows = tensor_numel(dy) / (out ? out : 1);
	enum dtype dt = dy->dtype;
	if (x->grad && in) // dx (R, in) += dy w
		cu_gemm(dt, false, false, rows, in, out, 1.0f, dy->data, out, 0, w->data, in, 0, 1.0f,
		     x->grad->data, in, 0, 1);
	if (w->grad && in) // dw (out, in) += dy^T x
		cu_gemm(dt, true, false, out, in, rows, 1.0f, dy->data, out, 0, x->data, in, 0, 1.0f,
		     w->grad->data, in, 0, 1);
	if (bias && bias->grad) // db (out) += the sum over rows of dy (colsum.cuh)
		CU_FLOAT_DISPATCH(dt, T,
			colsum_add(ColsumOf<T>{ (const T *)dy->data }, rows, out,
				   ColsumDst<T, 1>{ { (T *)bias->grad->data } }));
}
