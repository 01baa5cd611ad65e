/* cuda_api.h: the C face of the CUDA code. .cu files are compiled as C++
 * by nvcc and export these functions with C linkage; this header uses no
 * CUDA types so C files can include it. Compiled in when the Makefile finds
 * nvcc (it defines HUG_CUDA). */
#ifndef HUG_AUTOGRAD_CUDA_API_H
#define HUG_AUTOGRAD_CUDA_API_H

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif

#endif
