/* cuda_check.h: the check wrappers for CUDA runtime and cuBLAS calls, for
 * the .cu files and for C files that call the CUDA runtime (parallel/
 * comm_nccl.c). Each prints file:line, the call and the library's own
 * error string.
 *
 *   CUDA_CHECK(call)    a failing call is tier 2: panic (abort) at file:line
 *   CUBLAS_CHECK(call)  the same for cuBLAS status codes
 *   CUDA_LAUNCH_CHECK() after a kernel launch: reports a bad launch
 *                       configuration at the launch site
 *   CUDA_TRY(call)      for functions that report failure to their caller:
 *                       prints the message and jumps to the label `fail` */
#ifndef HUG_AUTOGRAD_CUDA_CHECK_H
#define HUG_AUTOGRAD_CUDA_CHECK_H

#include <stdio.h>

#ifdef __cplusplus
#include <cuda_runtime.h>
/* base/panic.h declares hug_panic_at with C11's _Noreturn, which C++ spells
 * [[noreturn]]. */
#ifndef _Noreturn
#define _Noreturn [[noreturn]]
#endif
extern "C" {
#include "../../base/panic.h"
}
#else
#include <cuda_runtime_api.h>

#include "../../base/panic.h"
#endif

#define CUDA_CHECK(call)                                                       \
	do {                                                                   \
		cudaError_t e_ = (call);                                       \
		if (e_ != cudaSuccess)                                         \
			hug_panic_at(__FILE__, __LINE__, "%s failed: %s (%s)", \
				     #call, cudaGetErrorString(e_),            \
				     cudaGetErrorName(e_));                    \
	} while (0)

#define CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

#ifdef CUBLAS_VER_MAJOR
#define CUBLAS_CHECK(call)                                                     \
	do {                                                                   \
		cublasStatus_t s_ = (call);                                    \
		if (s_ != CUBLAS_STATUS_SUCCESS)                               \
			hug_panic_at(__FILE__, __LINE__, "%s failed: %s (%s)", \
				     #call, cublasGetStatusString(s_),         \
				     cublasGetStatusName(s_));                 \
	} while (0)
#endif

#define CUDA_TRY(call)                                                         \
	do {                                                                   \
		cudaError_t e_ = (call);                                       \
		if (e_ != cudaSuccess) {                                       \
			fprintf(stderr, "hug: %s:%d: %s failed: %s\n", __FILE__, \
				__LINE__, #call, cudaGetErrorString(e_));      \
			goto fail;                                             \
		}                                                              \
	} while (0)

#endif
