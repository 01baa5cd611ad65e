/* test_cuda_nccl.c: the NCCL half of the communicator on one GPU: a
 * single-rank NCCL communicator (no MPI needed) runs every collective on
 * device buffers, and the tensor-level collectives of comm.h route device
 * tensors correctly in a world of one. Several ranks need several GPUs
 * (NCCL refuses two ranks on one GPU); the MPI tests cover the collectives'
 * arithmetic over MPI. Without a GPU (or without MPI in the build, which
 * leaves NCCL out) every test reports itself skipped. */
#include <string.h>

#include "../autograd/autograd.h"
#include "../parallel/comm.h"
#include "harness.h"
#include "test_cuda_util.h"

#if defined(HUG_CUDA) && defined(HUG_MPI)
#include "../autograd/backend.h"
#include "../autograd/cuda/cuda_api.h"
#include "../parallel/comm_nccl.h"

/* A device f32 tensor holding v[0..n). */
static struct tensor *dev_f32(struct arena *a, const float *v, int64_t n)
{
	struct tensor *t = tensor_new(a, DT_F32, 1, &n);
	hug_cuda_memcpy_h2d(t->data, v, (size_t)n * sizeof(float));
	return t;
}

TEST(cuda_nccl_single_rank_collectives)
{
	CUDA_TEST_BEGIN();
	struct parallel p;
	struct hug_error err = { 0 };
	parallel_single(&p);
	REQUIRE(comm_nccl_init(&p.world, 0, &err) == 0);
	CHECK(comm_nccl_device(&p.world) == hug_cuda_current_device());
	struct arena a;
	arena_init(&a, "nccl", 0, hug_cuda_allocator());
	float v[7] = { 1, -2, 3.5f, 4, -5, 6, 7.25f }, got[7];
	struct tensor *t = dev_f32(&a, v, 7);
	comm_nccl_allreduce(&p.world, t->data, 7, DT_F32, COMM_SUM);
	hug_cuda_memcpy_d2h(got, t->data, sizeof(got));
	CHECK(memcmp(got, v, sizeof(v)) == 0); /* one rank: the sum is itself */
	comm_nccl_allreduce(&p.world, t->data, 7, DT_F32, COMM_MAX);
	struct tensor *u = tensor_zeros(&a, DT_F32, TENSOR_SHAPE(7));
	comm_nccl_allgather(&p.world, t->data, u->data, 7, DT_F32);
	hug_cuda_memcpy_d2h(got, u->data, sizeof(got));
	CHECK(memcmp(got, v, sizeof(v)) == 0);
	struct tensor *w = tensor_zeros(&a, DT_F32, TENSOR_SHAPE(7));
	comm_nccl_reduce_scatter(&p.world, t->data, w->data, 7, DT_F32);
	hug_cuda_memcpy_d2h(got, w->data, sizeof(got));
	CHECK(memcmp(got, v, sizeof(v)) == 0);
	comm_nccl_broadcast(&p.world, t->data, 7, DT_F32, 0);
	comm_nccl_allreduce(&p.world, t->data, 0, DT_BF16, COMM_SUM); /* empty: no call */
	comm_nccl_free(&p.world);
	CHECK(p.world.nccl == NULL);
	arena_free(&a);
}

/* The non-blocking all-reduce (data parallelism's path) on a single-rank
 * communicator: it starts after the kernels issued before it on the
 * backend's stream (a fill), and comm_nccl_wait orders the kernels issued
 * after it (a scale) behind it. One rank cannot show a missing order in
 * the values, but every call of the side-stream path runs: the stream, the
 * events, ncclAllReduce on the side stream and the wait. */
TEST(cuda_nccl_single_rank_iallreduce)
{
	CUDA_TEST_BEGIN();
	struct parallel p;
	struct hug_error err = { 0 };
	parallel_single(&p);
	REQUIRE(comm_nccl_init(&p.world, 0, &err) == 0);
	struct arena a;
	arena_init(&a, "nccl", 0, hug_cuda_allocator());
	const int64_t n = (int64_t)1 << 20;
	struct tensor *t = tensor_zeros(&a, DT_F32, TENSOR_SHAPE(n));
	const struct ag_backend *be = ag_backend_get(DEV_CUDA);
	for (int round = 0; round < 3; round++) { /* the side stream is reused */
		be->fill(t, 2.0 + round);
		struct comm_request r;
		comm_nccl_iallreduce(&p.world, t->data, n, DT_F32, &r);
		CHECK(r.active && r.device);
		comm_nccl_wait(&r);
		CHECK(!r.active);
		be->scale(t, 3.0);
		float got[2];
		hug_cuda_memcpy_d2h(&got[0], t->data, sizeof(float));
		hug_cuda_memcpy_d2h(&got[1], (float *)t->data + n - 1, sizeof(float));
		CHECK(got[0] == 3.0f * (float)(2 + round) && got[1] == got[0]);
	}
	struct comm_request e;
	comm_nccl_iallreduce(&p.world, t->data, 0, DT_F32, &e); /* empty: no request */
	CHECK(!e.active);
	comm_nccl_wait(&e);
	comm_nccl_free(&p.world);
	arena_free(&a);
}

/* comm.h's tensor collectives in a world of one: device tensors are copied
 * (allgather, reduce-scatter) or left alone (all-reduce) without NCCL. */
TEST(cuda_comm_tensor_collectives_world_of_one)
{
	CUDA_TEST_BEGIN();
	struct parallel p;
	parallel_single(&p);
	struct arena a;
	arena_init(&a, "comm", 0, hug_cuda_allocator());
	float v[5] = { 0.5f, 1, 2, -3, 9 }, got[5];
	struct tensor *t = dev_f32(&a, v, 5);
	struct tensor *u = tensor_zeros(&a, DT_F32, TENSOR_SHAPE(5));
	comm_allreduce_tensor(&p.world, t, COMM_SUM);
	comm_allgather_tensor(&p.world, t, u);
	hug_cuda_memcpy_d2h(got, u->data, sizeof(got));
	CHECK(memcmp(got, v, sizeof(v)) == 0);
	struct tensor *w = tensor_zeros(&a, DT_F32, TENSOR_SHAPE(5));
	comm_reduce_scatter_tensor(&p.world, u, w);
	hug_cuda_memcpy_d2h(got, w->data, sizeof(got));
	CHECK(memcmp(got, v, sizeof(v)) == 0);
	arena_free(&a);
}

#else
TEST(cuda_nccl)
{
	CUDA_TEST_BEGIN(); /* skips (or fails under HUG_REQUIRE_GPU) without a GPU */
#ifdef HUG_CUDA
	SKIP("built without MPI: NCCL is not built");
#endif
}
#endif
