/* attention.c: CPU kernels for the fused self-attention (ALiBi, causal,
 * window, padding and document masks, grouped key/value heads): the tiled
 * kernel (attention_tiled.tmpl.h, the default) and the exact one that
 * saves the probabilities (attention.tmpl.h), their scratch size, with the
 * matrix products through cpu_gemm (OpenBLAS, one thread per call
 * inside the (batch, head) OpenMP loop). */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "cpu_kernels.h"
#include "../rng.h"
#include "../../base/panic.h"

/* Query rows per block of the kernels: the scratch holds one block of
 * rows of Tk per (batch, query head). */
#define CPU_ATTN_ROWS 64
/* Keys per tile of the tiled kernel. */
#define CPU_ATTN_COLS 128

/* Sizes of an attention node; group: query heads per key/value head. */
struct attn_shape {
	int64_t b, h, tq, tk, d, group;
};

/* The leading dimension of the (T, D) matrices of q, k or v (B, H, T, D):
 * its stride on T, which ops.c makes at least D with a unit stride on D
 * (any value >= max(1, D) when T <= 1, where it is never stepped). */
static int64_t attn_ld(const struct tensor *t, int64_t d)
{
	int64_t min = d > 1 ? d : 1;
	if (t->shape[2] <= 1)
		return min;
	HUG_ASSERT((t->stride[3] == 1 || d == 1) && t->stride[2] >= min &&
		   t->stride[2] <= INT_MAX);
	return t->stride[2];
}

/* cpu_gemm typed for the template (beta 0 or 1). */
static void gemm_f32(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
		     const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
		     float *c, int64_t ldc)
{
	cpu_gemm(DT_F32, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void gemm_f64(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
		     const double *a, int64_t lda, const double *b, int64_t ldb,
		     double beta, double *c, int64_t ldc)
{
	cpu_gemm(DT_F64, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* The scratch's ALiBi positions (B, Tk), ahead of the kernels' blocks. */
static int64_t attn_pos_numel(const struct attn_shape *as)
{
	return as->b * as->tk;
}

/* The tiled kernel's scratch per (b, h): the forward's score tile (R, C)
 * and output accumulator (R, D), the backward's two (R, C) tiles. */
static int64_t attn_tile_numel(const struct attn_shape *as)
{
	int64_t r = CPU_ATTN_ROWS, c = CPU_ATTN_COLS;
	return r * (as->d > c ? c + as->d : 2 * c);
}

#define CPU_TEMPLATE "attention.tmpl.h"
#include "instantiate.h"
#define CPU_TEMPLATE "attention_tiled.tmpl.h"
#include "instantiate.h"

static struct attn_shape attn_shape(const struct ag_node *n)
{
	const struct tensor *q = n->in[0], *k = n->in[1];
	return (struct attn_shape){ q->shape[0], q->shape[1], q->shape[2],
				    k->shape[2], q->shape[3], n->p.attention.group };
}

int64_t cpu_scratch_numel(const struct ag_node *n)
{
	if (n->op != AG_OP_ATTENTION)
		return 0;
	struct attn_shape as = attn_shape(n);
	if (n->p.attention.tiled) /* positions, then a tile set per (b, h) */
		return attn_pos_numel(&as) + as.b * as.h * attn_tile_numel(&as);
	int64_t rows = as.tq < CPU_ATTN_ROWS ? as.tq : CPU_ATTN_ROWS;
	return attn_pos_numel(&as) + as.b * as.h * rows * as.tk; /* (B, H, rows, Tk) */
}

/* OpenBLAS (the pthread build) would start its own threads inside the
 * OpenMP loop: run it single-threaded for the kernel, which also keeps each
 * (b, h)'s products independent of the thread count. Returns the setting
 * to restore. */
static int blas_single_begin(void)
{
	int nt = openblas_get_num_threads();
	if (nt != 1)
		openblas_set_num_threads(1);
	return nt;
}

static void blas_single_end(int nt)
{
	if (nt != 1)
		openblas_set_num_threads(nt);
}

void cpu_attention_forward(struct ag_node *n)
{
	struct attn_shape as = attn_shape(n);
	int nt = blas_single_begin();
	if (n->p.attention.tiled)
		CPU_DISPATCH(n->out->dtype, attention_tiled_fwd, &as, n);
	else
		CPU_DISPATCH(n->out->dtype, attention_fwd, &as, n);
	blas_single_end(nt);
}

void cpu_attention_backward(struct ag_node *n)
{
	struct attn_shape as = attn_shape(n);
	int nt = blas_single_begin();
	if (n->p.attention.tiled)
		CPU_DISPATCH(n->out->dtype, attention_tiled_bwd, &as, n);
	else
		CPU_DISPATCH(n->out->dtype, attention_bwd, &as, n);
	blas_single_end(nt);
}
