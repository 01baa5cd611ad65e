/* test_cuda_util.c: see test_cuda_util.h. */
#include "test_cuda_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../autograd/rng.h"
#include "../base/alloc.h"
#include "../base/panic.h"

#ifdef HUG_CUDA
#include "../autograd/backend.h"
#include "../autograd/cuda/cuda_api.h"
#endif

bool cuda_test_required(void)
{
	const char *s = getenv("HUG_REQUIRE_GPU");
	return s && *s && strcmp(s, "0") != 0;
}

const char *cuda_test_unavailable(void)
{
#ifndef HUG_CUDA
	return "built without CUDA";
#else
	static int state; /* 0 untried, 1 ready, -1 failed */
	static struct hug_error err;
	if (state == 0) {
		if (hug_cuda_device_count() == 0) {
			hug_error_set(&err, "no CUDA device");
			state = -1;
		} else {
			state = hug_cuda_init(0, &err) == 0 ? 1 : -1;
		}
	}
	return state == 1 ? NULL : err.msg;
#endif
}

void cuda_test_fill(struct tensor *t, uint64_t seed, double scale, bool bf16_exact)
{
	int64_t n = tensor_numel(t);
	double *v = hug_malloc((size_t)(n ? n : 1) * sizeof(double));
	for (int64_t i = 0; i < n; i++) {
		double x = (2.0 * rng_uniform(seed, (uint64_t)i) - 1.0) * scale;
		v[i] = bf16_exact ? bf16_to_f32(f32_to_bf16((float)x)) : (float)x;
	}
	tensor_write_f64(t, v);
	hug_free(v);
}

#ifdef HUG_CUDA

struct tensor *cuda_test_upload(struct arena *dev, const struct tensor *h, enum dtype dt)
{
	struct arena tmp;
	arena_init(&tmp, "upload", 0, NULL);
	if (!dtype_is_float(h->dtype))
		dt = h->dtype;
	/* a contiguous host copy in the target dtype */
	struct tensor *c = tensor_new(&tmp, dt, h->ndim, h->shape);
	int64_t n = tensor_numel(h);
	if (dt == h->dtype) {
		ag_backend_get(DEV_CPU)->copy(c, h);
	} else {
		double *v = hug_malloc((size_t)(n ? n : 1) * sizeof(double));
		tensor_read_f64(h, v);
		tensor_write_f64(c, v);
		hug_free(v);
	}
	struct tensor *d = tensor_new(dev, dt, h->ndim, h->shape);
	hug_cuda_copy_h2d(d, c);
	arena_free(&tmp);
	return d;
}

double *cuda_test_read(const struct tensor *d)
{
	struct arena tmp, dtmp;
	arena_init(&tmp, "read", 0, NULL);
	arena_init(&dtmp, "read-dev", 0, hug_cuda_allocator());
	const struct tensor *src = d;
	if (!tensor_is_contiguous(d)) {
		struct tensor *c = tensor_new(&dtmp, d->dtype, d->ndim, d->shape);
		ag_backend_get(DEV_CUDA)->copy(c, d);
		src = c;
	}
	struct tensor *h = tensor_new(&tmp, d->dtype, d->ndim, d->shape);
	hug_cuda_copy_d2h(h, src);
	int64_t n = tensor_numel(d);
	double *v = hug_malloc((size_t)(n ? n : 1) * sizeof(double));
	tensor_read_f64(h, v);
	arena_free(&dtmp);
	arena_free(&tmp);
	return v;
}

double cuda_test_rel_err(const double *got, const double *want, int64_t n,
			 int64_t *worst)
{
	double maxdiff = 0, maxref = 0;
	*worst = 0;
	for (int64_t i = 0; i < n; i++) {
		double d = fabs(got[i] - want[i]);
		if (isnan(d))
			d = INFINITY;
		if (d > maxdiff) {
			maxdiff = d;
			*worst = i;
		}
		if (fabs(want[i]) > maxref)
			maxref = fabs(want[i]);
	}
	return maxref > 0 ? maxdiff / maxref : maxdiff;
}

#endif
