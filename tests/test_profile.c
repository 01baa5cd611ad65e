/* test_profile.c: the op profiler: kernels and regions are counted per
 * name and reported largest first; off, nothing is recorded or printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../autograd/profile.h"
#include "harness.h"

/* One small forward and backward: a matmul and a sum. */
static void step(void)
{
	struct arena a;
	arena_init(&a, "p", 0, NULL);
	struct ag_ctx ctx;
	ag_ctx_init(&ctx, &a);
	struct tensor *x = tensor_zeros(&a, DT_F32, TENSOR_SHAPE(4, 5));
	struct tensor *w = tensor_zeros(&a, DT_F32, TENSOR_SHAPE(5, 3));
	tensor_set_requires_grad(w, &a);
	CHECK(ag_backward(&ctx, ag_sum(&ctx, ag_matmul(&ctx, x, w, false, false), AG_DIM_ALL)) == 0);
	arena_free(&a);
}

/* The report as text (static storage, replaced by the next call). */
static const char *report(void)
{
	static char text[8192];
	memset(text, 0, sizeof(text));
	FILE *f = fmemopen(text, sizeof(text) - 1, "w");
	ag_profile_report(f);
	fclose(f);
	return text;
}

TEST(profile_counts_ops_and_regions)
{
	ag_profile_set(true);
	ag_profile_reset();
	step();
	step();
	double t0 = ag_profile_start(DEV_CPU);
	ag_profile_stop("my region", DEV_CPU, t0);
	const char *r = report();
	printf("\n%s    ", r);
	CHECK(strstr(r, "profile (HUG_PROFILE)") != NULL);
	const char *mm = strstr(r, "matmul forward");
	CHECK(mm && strtol(mm + strlen("matmul forward"), NULL, 10) == 2);
	CHECK(strstr(r, "matmul backward") && strstr(r, "sum forward"));
	const char *reg = strstr(r, "my region");
	CHECK(reg && strtol(reg + strlen("my region"), NULL, 10) == 1);
	ag_profile_reset();
	r = report();
	CHECK(r[0] == '\0'); /* nothing timed: no table */
	ag_profile_set(false);
	step();
	r = report();
	CHECK(r[0] == '\0');
}
