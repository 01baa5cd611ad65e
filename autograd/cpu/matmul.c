/* matmul.c: CPU kernels for batched matmul and linear, on OpenBLAS
 * (cblas_sgemm / cblas_dgemm, row-major). */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "cpu_kernels.h"
#include "../node_dims.h"
#include "../../base/panic.h"

/* Multiply-adds below which a product runs on one OpenBLAS thread. */
#define GEMM_PAR_MIN 4194304.0

#define CPU_TEMPLATE "matmul.tmpl.h"
#include "instantiate.h"

void cpu_gemm(enum dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
	      const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
	      int64_t ldc)
{
	HUG_ASSERT(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX &&
		   lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX);
	if (m == 0 || n == 0)
		return;
	size_t es = dtype_size(dt);
	if (k == 0) { /* an empty sum: C = beta C */
		HUG_ASSERT(beta == 0 || beta == 1);
		if (beta == 0)
			for (int64_t i = 0; i < m; i++)
				memset((char *)c + (size_t)(i * ldc) * es, 0, (size_t)n * es);
		return;
	}
	enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
	enum CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
	/* A small product (a decoding step's, about 4M multiply-adds or fewer)
	 * runs on one thread: waking OpenBLAS's threads costs more than they
	 * save there, most of all on a busy machine. Each element of C is one
	 * thread's sum either way: the bits do not change. */
	int threads = (double)m * (double)n * (double)k < GEMM_PAR_MIN ? openblas_get_num_threads() : 1;
	if (threads > 1)
		openblas_set_num_threads(1);
	if (dt == DT_F64)
		cblas_dgemm(CblasRowMajor, opa, opb, (int)m, (int)n, (int)k, alpha,
			    a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
	else
		cblas_sgemm(CblasRowMajor, opa, opb, (int)m, (int)n, (int)k, (float)alpha,
			    a, (int)lda, b, (int)ldb, (float)beta, c, (int)ldc);
	if (threads > 1)
		openblas_set_num_threads(threads);
}

/* cpu_gemm with alpha 1. */
static void gemm(enum dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
		 const void *a, int64_t lda, const void *b, int64_t ldb,
		 double beta, void *c, int64_t ldc)
{
	cpu_gemm(dt, ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

static char *at(const struct tensor *t, int64_t elems)
{
	return (char *)t->data + elems * (int64_t)dtype_size(t->dtype);
}

void cpu_matmul_forward(struct ag_node *nd)
{
	const struct tensor *a = nd->in[0], *b = nd->in[1];
	struct tensor *c = nd->out;
	bool ta = nd->p.matmul.trans_a, tb = nd->p.matmul.trans_b;
	struct ag_mm_dims d = ag_mm_dims_of(nd);
	int64_t lda = ta ? d.m : d.k, ldb = tb ? d.k : d.n;
	if (d.b_shared && !ta) { /* (batch*M, K) @ op(B): one product */
		gemm(c->dtype, false, tb, d.batch * d.m, d.n, d.k, a->data, lda,
		     b->data, ldb, 0.0, c->data, d.n);
		return;
	}
	for (int64_t i = 0; i < d.batch; i++)
		gemm(c->dtype, ta, tb, d.m, d.n, d.k, at(a, i * d.m * d.k), lda,
		     at(b, d.b_shared ? 0 : i * d.k * d.n), ldb, 0.0,
		     at(c, i * d.m * d.n), d.n);
}

void cpu_matmul_backward(struct ag_node *nd)
{
	const struct tensor *a = nd->in[0], *b = nd->in[1], *dc = nd->out->grad;
	struct tensor *da = a->grad, *db = b->grad;
	bool ta = nd->p.matmul.trans_a, tb = nd->p.matmul.trans_b;
	struct ag_mm_dims d = ag_mm_dims_of(nd);
	enum dtype dt = dc->dtype;
	int64_t lda = ta ? d.m : d.k, ldb = tb ? d.k : d.n;
	if (da) {
		for (int64_t i = 0; i < d.batch; i++) {
			const void *bi = at(b, d.b_shared ? 0 : i * d.k * d.n);
			const void *dci = at(dc, i * d.m * d.n);
			void *dai = at(da, i * d.m * d.k);
			if (!ta) /* dA (M, K) += dC op(B)^T */
				gemm(dt, false, !tb, d.m, d.k, d.n, dci, d.n, bi, ldb,
				     1.0, dai, d.k);
			else /* dA (K, M) += op(B) dC^T */
				gemm(dt, tb, true, d.k, d.m, d.n, bi, ldb, dci, d.n,
				     1.0, dai, d.m);
		}
	}
	if (db) {
		if (d.b_shared && !ta && !tb) { /* dB (K, N) += A^T dC over all rows */
			gemm(dt, true, false, d.k, d.n, d.batch * d.m, a->data, lda,
			     dc->data, d.n, 1.0, db->data, d.n);
			return;
		}
		if (d.b_shared && !ta && tb) { /* dB (N, K) += dC^T A over all rows */
			gemm(dt, true, false, d.n, d.k, d.batch * d.m, dc->data, d.n,
			     a->data, lda, 1.0, db->data, d.k);
			return;
		}
		for (int64_t i = 0; i < d.batch; i++) {
			const void *ai = at(a, i * d.m * d.k);
			const void *dci = at(dc, i * d.m * d.n);
			void *dbi = at(db, d.b_shared ? 0 : i * d.k * d.n);
			if (!tb) /* dB (K, N) += op(A)^T dC */
				gemm(dt, !ta, false, d.k, d.n, d.m, ai, lda, dci, d.n,
				     1.0, dbi, d.n);
			else /* dB (N, K) += dC^T op(A) */
				gemm(dt, true, ta, d.n, d.k, d.m, dci, d.n, ai, lda,
				     1.0, dbi, d.k);
		}
	}
}

/* x (R, in), w (out, in), bias (out) -> y (R, out). */
void cpu_linear_forward(struct ag_node *nd)
{
	const struct tensor *x = nd->in[0], *w = nd->in[1], *bias = nd->in[2];
	struct tensor *y = nd->out;
	int64_t in = w->shape[1], out = w->shape[0];
	int64_t rows = in ? tensor_numel(x) / in : tensor_numel(y) / (out ? out : 1);
	if (bias)
		CPU_DISPATCH(y->dtype, rows_set, y->data, bias->data, rows, out);
	if (in == 0) {
		if (!bias)
			cpu_fill(y, 0.0);
		return;
	}
	gemm(y->dtype, false, true, rows, out, in, x->data, in, w->data, in,
	     bias ? 1.0 : 0.0, y->data, out);
}

void cpu_linear_backward(struct ag_node *nd)
{
	const struct tensor *x = nd->in[0], *w = nd->in[1], *bias = nd->in[2];
	const struct tensor *dy = nd->out->grad;
	int64_t in = w->shape[1], out = w->shape[0];
	int64_t rows = tensor_numel(dy) / (out ? out : 1);
	enum dtype dt = dy->dtype;
	if (x->grad && in) /* dx (R, in) += dy w */
		gemm(dt, false, false, rows, in, out, dy->data, out, w->data, in,
		     1.0, x->grad->data, in);
	if (w->grad && in) /* dw (out, in) += dy^T x */
		gemm(dt, true, false, out, in, rows, dy->data, out, x->data, in,
		     1.0, w->grad->data, in);
	if (bias && bias->grad)
		CPU_DISPATCH(dt, rows_sum_into, bias->grad->data, dy->data, rows, out);
}
