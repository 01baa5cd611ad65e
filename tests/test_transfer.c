/* test_transfer.c: autograd/transfer.h on the host (the device side runs
 * in the CUDA tests): byte copies, tensor copies, .item() of every dtype,
 * flat range views, and the backends' scale. */
#include <math.h>
#include <string.h>

#include "../autograd/autograd.h"
#include "../autograd/backend.h"
#include "harness.h"

TEST(transfer_host_copies)
{
	struct arena a;
	arena_init(&a, "t", 0, NULL);
	struct tensor *x = tensor_new(&a, DT_F32, TENSOR_SHAPE(3, 5));
	struct tensor *y = tensor_zeros(&a, DT_F32, TENSOR_SHAPE(15));
	float *xv = x->data;
	for (int i = 0; i < 15; i++)
		xv[i] = (float)i * 0.5f - 3.0f;
	tensor_transfer(y, x); /* same numel, other shape: a flat copy */
	CHECK(memcmp(x->data, y->data, tensor_nbytes(x)) == 0);
	char buf[8] = "abcdefg";
	ag_memcpy(buf + 1, DEV_CPU, "XYZ", DEV_CPU, 3);
	CHECK(strcmp(buf, "aXYZefg") == 0);
	ag_memcpy(buf, DEV_CPU, NULL, DEV_CPU, 0); /* zero bytes: no access */
	CHECK(buf[0] == 'a');
	arena_free(&a);
}

TEST(transfer_item_of_every_dtype)
{
	struct arena a;
	arena_init(&a, "t", 0, NULL);
	const enum dtype dts[] = { DT_F32, DT_F64, DT_BF16, DT_F16, DT_I32, DT_U8 };
	for (size_t k = 0; k < sizeof(dts) / sizeof(dts[0]); k++) {
		struct tensor *t = tensor_new(&a, dts[k], 0, NULL);
		tensor_fill(t, 3.0);
		CHECK_NEAR(tensor_item(t), 3.0, 0);
		struct tensor *u = tensor_new(&a, dts[k], TENSOR_SHAPE(1, 1));
		tensor_fill(u, dts[k] == DT_U8 ? 200.0 : -1.5);
		double want = dts[k] == DT_U8 ? 200.0 : dts[k] == DT_I32 ? -1.0 : -1.5;
		if (tensor_item(u) != want)
			test_fail_at(__FILE__, __LINE__, "%s: item %g, want %g",
				     dtype_name(dts[k]), tensor_item(u), want);
	}
	arena_free(&a);
}

TEST(transfer_flat_range_views_and_scale)
{
	struct arena a;
	arena_init(&a, "t", 0, NULL);
	struct tensor *x = tensor_new(&a, DT_F64, TENSOR_SHAPE(4, 6));
	double *v = x->data;
	for (int i = 0; i < 24; i++)
		v[i] = i + 1;
	struct tensor view;
	tensor_flat_range(&view, x, 5, 7);
	CHECK(view.ndim == 1 && view.shape[0] == 7 && tensor_is_contiguous(&view));
	CHECK(view.data == (void *)(v + 5) && view.device == DEV_CPU && !view.grad);
	ag_backend_get(DEV_CPU)->scale(&view, -2.0);
	for (int i = 0; i < 24; i++) {
		double want = (i >= 5 && i < 12) ? -2.0 * (i + 1) : i + 1;
		if (v[i] != want)
			test_fail_at(__FILE__, __LINE__, "element %d: %g, want %g", i, v[i], want);
	}
	tensor_flat_range(&view, x, 24, 0); /* empty, at the end */
	CHECK(tensor_numel(&view) == 0);
	arena_free(&a);
}
