/* device.c: see device.h. */
#include "device.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../autograd/backend.h"
#include "../nn/model.h"
#ifdef HUG_CUDA
#include "../autograd/cuda/cuda_api.h"
#endif

/* "cuda" -> 0, "cuda:N" -> N; -1 for anything else. */
static int cuda_index(const char *spec)
{
	if (!strcmp(spec, "cuda"))
		return 0;
	if (strncmp(spec, "cuda:", 5) || !spec[5])
		return -1;
	char *end;
	errno = 0;
	long v = strtol(spec + 5, &end, 10);
	return *end || errno || v < 0 || v > 1024 ? -1 : (int)v;
}

int cli_model_to_device(struct model *m, const char *spec, struct hug_error *err)
{
	if (!spec || !strcmp(spec, "cpu"))
		return 0;
	int index = cuda_index(spec);
	if (index < 0)
		return hug_error_set(err, "--device: expected cpu, cuda or cuda:N, got \"%s\"", spec);
#ifdef HUG_CUDA
	if (hug_cuda_init(index, err))
		return hug_error_wrap(err, "--device %s", spec);
	struct model host = *m;
	model_to_device(m, &host, ag_device_allocator(DEV_CUDA), false);
	model_free(&host);
	return 0;
#else
	return hug_error_set(err, "--device %s: this hug was built without CUDA (nvcc was "
			     "not found at build time)", spec);
#endif
}
