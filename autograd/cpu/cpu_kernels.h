/* cpu_kernels.h: the CPU backend's kernels (shared by its files only).
 * Kernels that do math are written once in a *.tmpl.h body and instantiated
 * for REAL = float and double by instantiate.h, whose CPU_DISPATCH picks
 * the instance for a dtype. */
#ifndef HUG_AUTOGRAD_CPU_KERNELS_H
#define HUG_AUTOGRAD_CPU_KERNELS_H

#include "../backend.h"
#include "../node.h"

/* Parallelise a loop only when it has at least this much work. */
#define CPU_PAR_MIN 32768

/* cpu_<op>_forward (not for views) and cpu_<op>_backward for every op of
 * ../ops.def but the shared tp_* ones */
#define AG_OP(U, l, kind) AG_OP_PROTOS(cpu, l, kind)
#define AG_OP_SHARED(U, l, kind)
#include "../ops.def"

/* The scratch elements node n's kernels need (struct ag_backend's
 * scratch_numel): for attention, the ALiBi positions (B, Tk) and a
 * block of query rows (exact) or a set of tiles (tiled) per (b, h). */
int64_t cpu_scratch_numel(const struct ag_node *n);
/* optim.c: the optimizer hooks of struct ag_backend (f32 and f64). */
void cpu_optim_update(const struct ag_optim_update *u, enum dtype dt, int64_t n, void *p,
		      const void *g, void *m, void *v);
double cpu_sum_squares(int n, struct tensor *const *ts);
void cpu_accumulate(struct tensor *dst, const struct tensor *src);
void cpu_fill(struct tensor *t, double value);
void cpu_scale(struct tensor *t, double a);
void cpu_copy(struct tensor *dst, const struct tensor *src);
void cpu_memcpy(void *dst, const void *src, size_t bytes);
int64_t cpu_find_out_of_range(const struct tensor *t, int64_t lo, int64_t hi, int64_t skip,
			      int32_t *value);
/* C (m, n) = alpha op(A) op(B) + beta C for f32 or f64 (dt), row-major,
 * leading dims in elements, op(X) = X^T when tx (OpenBLAS). k = 0 gives
 * beta C (beta 0 or 1). */
void cpu_gemm(enum dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
	      const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
	      int64_t ldc);

/* dst (strides dst_stride, shape `shape`) += src (contiguous, `shape`),
 * float tensors of dtype dt. The element at index i of src is added at
 * offset sum_d i_d * dst_stride[d] of dst. */
void cpu_strided_add(enum dtype dt, void *dst, const int64_t *dst_stride,
		     const void *src, int ndim, const int64_t *shape);

#endif
