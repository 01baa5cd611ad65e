/* cuda_kernels.h: the CUDA backend's kernel entry points, one per op
 * direction, with the CPU backend's contract (autograd/backend.h): they
 * read the node (host memory) and launch work on the backend's stream over
 * device data. Defined with C linkage in the .cu files of autograd/cuda/; named after
 * the op list autograd/ops.def, which also makes the table in
 * autograd/cuda_backend.c. No CUDA types here.
 *
 * Dtypes: f32 and bf16 for the math ops (bf16 computes in f32 and rounds
 * once on store); the data-movement kernels (copy, fill, accumulate, cast,
 * the view backwards) take every float dtype (f32, f64, bf16, f16), and
 * copy and fill also i32 and u8. */
#ifndef HUG_AUTOGRAD_CUDA_KERNELS_H
#define HUG_AUTOGRAD_CUDA_KERNELS_H

#include <stdint.h>

#include "../dtype.h"
#include "../op_table.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ag_backend;
struct ag_optim_update;
struct ag_node;
struct tensor;

/* The table (autograd/cuda_backend.c); hug_cuda_init registers it. */
extern const struct ag_backend ag_cuda_backend;

/* runtime.cu: device, stream, cuBLAS handle and workspace, scratch. Called
 * once by hug_cuda_init after it has checked the device index. */
void cuda_runtime_init(int device);

/* cuda_<op>_forward (not for views) and cuda_<op>_backward for every op of
 * ../ops.def but the shared tp_* ones */
#define AG_OP(U, l, kind) AG_OP_PROTOS(cuda, l, kind)
#define AG_OP_SHARED(U, l, kind)
#include "../ops.def"

/* The backend's non-op entry points (struct ag_backend). */
void cuda_accumulate(struct tensor *dst, const struct tensor *src);
void cuda_fill(struct tensor *t, double value);
void cuda_copy(struct tensor *dst, const struct tensor *src);
/* optim.cu: the optimizer update (struct ag_backend's optim_update) on f32
 * device arrays, through hug_cuda_adamw_update / hug_cuda_sgd_update. */
void cuda_optim_update(const struct ag_optim_update *u, enum dtype dt, int64_t n, void *p,
		       const void *g, void *m, void *v);
/* embedding.cu: the range check of ids and targets, with the contract of
 * struct ag_backend's find_out_of_range for a contiguous i32 device tensor.
 * Waits for the stream (one small copy to the host per call). */
int64_t cuda_find_out_of_range(const struct tensor *t, int64_t lo, int64_t hi, int64_t skip,
			       int32_t *value);

#ifdef __cplusplus
}
#endif

#endif
