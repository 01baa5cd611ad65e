/* cuda_api.h: the C face of the CUDA code. .cu files are compiled as C++
 * by nvcc and export these functions with C linkage; this header uses no
 * CUDA types so C files can include it. Compiled in when the Makefile finds
 * nvcc (it defines HUG_CUDA).
 *
 * Memory model. Device tensors live in arenas whose allocator is
 * hug_cuda_allocator(): one cudaMalloc per chunk, so, as on the host, a
 * step of the same shape allocates nothing after the first. Tensor headers
 * and tape nodes of such arenas stay in host memory (arena_alloc_meta).
 *
 * Streams. Every kernel, cuBLAS call, memset and copy of the backend goes
 * to one stream (hug_cuda_stream()), a blocking stream: it is ordered with
 * the legacy default stream, so work issued there (parallel/'s blocking
 * NCCL collectives) needs no extra synchronisation. The one exception is
 * comm_nccl_iallreduce's side stream, which is non-blocking and ordered
 * with this stream only by the events it records (parallel/comm_nccl.c).
 * Kernels are asynchronous; the functions that return data to the host
 * (copies to the host, norms) wait for the stream. */
#ifndef HUG_AUTOGRAD_CUDA_API_H
#define HUG_AUTOGRAD_CUDA_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct arena_allocator;
struct hug_error;
struct tensor;

/* Number of usable CUDA devices; 0 when there is no GPU or no driver
 * (never an error). */
int hug_cuda_device_count(void);

/* Name of device `dev` into buf (NUL-terminated); 0, or -1 if unavailable. */
int hug_cuda_device_name(int dev, char *buf, int len);

/* Round-trips n floats through device memory: uploads `in`, runs a kernel
 * computing out[i] = a * in[i] + b, downloads into `out`. A smoke test of
 * the toolchain, driver and launch path; 0, or -1 with a message on
 * stderr naming the failing CUDA call. */
int hug_cuda_axpb_roundtrip(const float *in, float *out, int n, float a, float b);

/* ---- the backend (autograd/cuda_backend.c, autograd/cuda/runtime.cu) ---- */

/* Makes device `device` current, creates the stream, the cuBLAS handle and
 * its workspace, and registers the CUDA backend (ag_backend_register), so
 * contexts whose step arena uses hug_cuda_allocator() compute on the GPU.
 * Until it is called nothing CUDA runs and the CPU path is untouched.
 * Calling it again with the same device does nothing. Returns 0, or -1
 * with `err` set: no CUDA device, `device` out of range, or already
 * initialised on another device. Failing CUDA calls after the device is
 * found abort (tier 2). */
int hug_cuda_init(int device, struct hug_error *err);
/* True once hug_cuda_init has succeeded. */
bool hug_cuda_ready(void);
/* The device in use, or -1 before hug_cuda_init. */
int hug_cuda_current_device(void);

/* The allocator of device arenas (cudaMalloc / cudaFree / cudaMemsetAsync
 * on the backend's stream). Needs hug_cuda_init first (a panic otherwise). */
const struct arena_allocator *hug_cuda_allocator(void);
/* Number of cudaMalloc calls made through hug_cuda_allocator() so far (the
 * device twin of hug_alloc_count). */
uint64_t hug_cuda_alloc_count(void);

/* Copies between a host tensor and a device tensor: same dtype and shape,
 * both contiguous (a panic otherwise: callers own these invariants). Both
 * wait for the stream, so the source may be reused at once and a copy to
 * the host sees every kernel issued before it. */
void hug_cuda_copy_h2d(struct tensor *dst, const struct tensor *src);
void hug_cuda_copy_d2h(struct tensor *dst, const struct tensor *src);
/* The same for raw bytes. */
void hug_cuda_memcpy_h2d(void *dst, const void *src, size_t bytes);
void hug_cuda_memcpy_d2h(void *dst, const void *src, size_t bytes);
/* Copies bytes between any two of host and device memory (unified
 * addressing tells which is which) and waits for the stream: the backend's
 * memcpy (autograd/transfer.h). */
void hug_cuda_memcpy(void *dst, const void *src, size_t bytes);
/* Zeroes `bytes` of device memory (asynchronously, on the stream). */
void hug_cuda_zero(void *p, size_t bytes);
/* Waits until every piece of work issued to the stream has finished. */
void hug_cuda_synchronize(void);
/* The backend's stream (a cudaStream_t) for code that issues its own work. */
void *hug_cuda_stream(void);

/* ---- optimizer pieces (autograd/cuda/optim.cu), device f32 arrays ---- */

/* AdamW on n elements with autograd/cpu/optim.tmpl.h's arithmetic, operation
 * for operation in f32 (no fused multiply-adds), so a step gives the same
 * bits as the CPU optimizer: p *= 1 - lr wd; m += (1 - b1)(g - m);
 * v = b2 v + (1 - b2) g^2; p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps).
 * bc1, bc2 are the bias corrections 1 - beta^step. Asynchronous. */
void hug_cuda_adamw_update(int64_t n, float *p, const float *g, float *m, float *v,
			   double lr, double wd, double b1, double b2, double eps,
			   double bc1, double bc2);
/* SGD as autograd/cpu/optim.tmpl.h's sgd_update (buf NULL: no momentum). */
void hug_cuda_sgd_update(int64_t n, float *p, const float *g, float *buf, double lr,
			 double wd, double momentum, bool nesterov, bool first);
/* Sum of squares (accumulated in double) of every element of the n device
 * float tensors (f32 or bf16, contiguous), for the global gradient norm.
 * The order of summation is fixed (tensors in order; within a tensor a
 * fixed split into blocks combined in order), so it is deterministic. Waits
 * for the stream. */
double hug_cuda_sum_squares(int n, struct tensor *const *ts);
/* t *= a for a contiguous device float tensor (gradient clipping). */
void hug_cuda_scale(struct tensor *t, double a);

#ifdef __cplusplus
}
#endif

#endif
