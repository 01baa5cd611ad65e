/* test_cuda_util.h: helpers shared by the CUDA tests (tests/test_cuda_*.c).
 *
 * A CUDA test starts with CUDA_TEST_BEGIN(): without a usable GPU it ends
 * the test as skipped with the reason ("built without CUDA", "no CUDA
 * device", or hug_cuda_init's message); with HUG_REQUIRE_GPU=1 in the
 * environment (make test-gpu) the same condition is a failure instead, so a
 * GPU session cannot mistake "all skipped" for "all passed". */
#ifndef HUG_TESTS_TEST_CUDA_UTIL_H
#define HUG_TESTS_TEST_CUDA_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "../autograd/autograd.h"
#include "../nn/bloom.h"
#include "harness.h"

/* NULL when the CUDA backend is initialised on device 0 (done once, on the
 * first call), else why not. */
const char *cuda_test_unavailable(void);
/* True when HUG_REQUIRE_GPU is set to something other than "" or "0". */
bool cuda_test_required(void);

#define CUDA_TEST_BEGIN()                                                      \
	do {                                                                   \
		const char *why_ = cuda_test_unavailable();                    \
		if (why_) {                                                    \
			if (cuda_test_required()) {                            \
				test_fail_at(__FILE__, __LINE__,               \
					     "HUG_REQUIRE_GPU is set but %s", why_); \
				return;                                        \
			}                                                      \
			SKIP(why_);                                            \
		}                                                              \
	} while (0)

/* Fills a host float tensor with uniform values in [-scale, scale) from
 * `seed`, rounded to bf16 first when `bf16_exact` (so a bf16 copy holds
 * the same values). */
void cuda_test_fill(struct tensor *t, uint64_t seed, double scale, bool bf16_exact);

#ifdef HUG_CUDA

/* A device copy, in arena `dev` (a device arena), of host tensor h (any
 * strides), converted to float dtype dt when h is float (dt ignored for
 * integer tensors). */
struct tensor *cuda_test_upload(struct arena *dev, const struct tensor *h, enum dtype dt);
/* The elements of device tensor d (any strides, any dtype) as a new
 * hug_malloc'd array of doubles in row-major order. */
double *cuda_test_read(const struct tensor *d);

/* max |got - want| / max |want| over n elements (max |got - want| when
 * want is all zero); NaN anywhere gives infinity. *worst gets the index of
 * the largest difference. */
double cuda_test_rel_err(const double *got, const double *want, int64_t n,
			 int64_t *worst);

#endif

#endif
