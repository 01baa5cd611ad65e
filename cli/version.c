/* version.c: `hug version`: the version and the backends compiled in. */
#include <stdio.h>

#include "cli.h"
#ifdef HUG_CUDA
#include "../autograd/cuda/cuda_api.h"
#endif

int cli_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("hug %s\nbackends: cpu (OpenBLAS)", HUG_VERSION);
#ifdef HUG_CUDA
	int n = hug_cuda_device_count();
	char name[256];
	if (n > 0 && hug_cuda_device_name(0, name, sizeof(name)) == 0)
		printf(", cuda (%d device%s: %s)", n, n == 1 ? "" : "s", name);
	else
		printf(", cuda (compiled in; no device found)");
#else
	printf(" (built without CUDA)");
#endif
	printf("\n");
	return 0;
}
