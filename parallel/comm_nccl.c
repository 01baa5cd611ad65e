/* comm_nccl.c: NCCL collectives on device buffers (see comm_nccl.h). A
 * communicator's ncclComm_t is made from a unique id that rank 0 creates
 * and broadcasts over the communicator's MPI_Comm; collectives are issued
 * on the legacy default stream and waited for by polling the stream and
 * NCCL's asynchronous error state, so a network failure NCCL detects in
 * the background becomes a panic naming the rank instead of a hang.
 *
 * comm_nccl_iallreduce instead runs on a side stream ordered after the CUDA
 * backend's stream by an event, so gradient all-reduces overlap backward.
 *
 * A plain C file: cuda_runtime_api.h and nccl.h are C headers. Compiled to
 * nothing unless hug is built with both CUDA and MPI. */
#if defined(HUG_CUDA) && defined(HUG_MPI)

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include "../autograd/cuda/cuda_api.h"
#include "../autograd/cuda/cuda_check.h"
#include "../base/panic.h"
#include "comm_nccl.h"
#include "mpi_check.h"

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
#error "hug needs NCCL 2.10 or newer (bf16 all-reduce)"
#endif
/* Newer than that floor: ncclGetLastError and ncclRemoteError (2.13),
 * ncclInProgress (2.14, with non-blocking communicators). */
#define HUG_NCCL_HAS_LAST_ERROR (NCCL_VERSION_CODE >= NCCL_VERSION(2, 13, 0))
#define HUG_NCCL_HAS_IN_PROGRESS (NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0))

/* World rank for messages; 0 in a world of one (MPI not running). */
static int world_rank(void)
{
	int init = 0, fin = 0, r = 0;
	MPI_Initialized(&init);
	MPI_Finalized(&fin);
	if (init && !fin)
		MPI_Comm_rank(MPI_COMM_WORLD, &r);
	return r;
}

/* What to try next for an NCCL failure of kind r. */
static const char *nccl_hint(ncclResult_t r)
{
	switch (r) {
	case ncclSystemError:
#if HUG_NCCL_HAS_LAST_ERROR
	case ncclRemoteError:
#endif
		return "a network or peer failure: check whether another rank failed "
		       "first, NCCL_SOCKET_IFNAME and NCCL_IB_HCA (docs/launch.md)";
	case ncclInvalidUsage:
		return "two ranks on one GPU, or a collective called differently on "
		       "different ranks";
	default:
		return "rerun with NCCL_DEBUG=WARN (or INFO) for NCCL's own log";
	}
}

/* NCCL's check wrapper (CUDA_CHECK and MPI_CHECK come from their headers):
 * a failing call panics with file:line (the panic hook turns that into
 * MPI_Abort under mpirun). */
#define NCCL_CHECK(call) nccl_check((call), #call, __FILE__, __LINE__)

static void nccl_check(ncclResult_t r, const char *what, const char *file, int line)
{
	if (r == ncclSuccess)
		return;
#if HUG_NCCL_HAS_LAST_ERROR
	const char *last = ncclGetLastError(NULL);
#else
	const char *last = NULL;
#endif
	hug_panic_at(file, line, "rank %d: %s failed: %s%s%s (NCCL %d.%d.%d): %s",
		     world_rank(), what, ncclGetErrorString(r), last && *last ? ": " : "",
		     last ? last : "", NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH, nccl_hint(r));
}

static ncclDataType_t nccl_type(enum dtype dt)
{
	switch (dt) {
	case DT_F32: return ncclFloat32;
	case DT_F64: return ncclFloat64;
	case DT_BF16: return ncclBfloat16;
	case DT_F16: return ncclFloat16;
	case DT_I32: return ncclInt32;
	case DT_U8: return ncclUint8;
	default: break;
	}
	hug_panic("no NCCL type for dtype %d", (int)dt);
}

/* Picks this process's GPU: device local_rank, or device 0 when exactly
 * one GPU is visible. 0, or -1 with the reason in why. */
static int pick_device(int local_rank, int *dev, char *why, size_t len)
{
	int count = 0;
	cudaError_t e = cudaGetDeviceCount(&count);
	if (e != cudaSuccess) {
		snprintf(why, len, "no usable GPU (cudaGetDeviceCount: %s): run on a "
			 "GPU node, and check nvidia-smi and the CUDA driver",
			 cudaGetErrorString(e));
		(void)cudaGetLastError();
		return -1;
	}
	if (local_rank >= 0 && local_rank < count) {
		*dev = local_rank;
		return 0;
	}
	if (count == 1) {
		*dev = 0;
		return 0;
	}
	snprintf(why, len, "local rank %d needs GPU %d but %d GPUs are visible: start at "
		 "most one process per GPU on each node (mpirun --map-by "
		 "ppr:<gpus>:node, srun --ntasks-per-node=<gpus>)", local_rank, local_rank,
		 count);
	return -1;
}

/* The ncclComm_t of c, made current on this thread; panics if c has none. */
static ncclComm_t prepare(const struct comm *c, const char *fn, int64_t n, int *dev)
{
	if (!c->nccl)
		hug_panic("%s: communicator of rank %d has no NCCL state "
			  "(comm_nccl_init was not called)", fn, c->rank);
	HUG_ASSERT(n >= 0);
	ncclComm_t nc = c->nccl;
	NCCL_CHECK(ncclCommCuDevice(nc, dev));
	/* The current device is per thread: a collective issued from a helper
	 * thread must still run on the communicator's GPU. */
	CUDA_CHECK(cudaSetDevice(*dev));
	return nc;
}

/* Panics unless p points into device (or managed) memory of device dev. */
static void check_ptr(const char *fn, const char *name, const void *p, int dev)
{
	struct cudaPointerAttributes a;
	CUDA_CHECK(cudaPointerGetAttributes(&a, p));
	if (a.type != cudaMemoryTypeDevice && a.type != cudaMemoryTypeManaged)
		hug_panic("%s: %s = %p is not device memory (host buffers go "
			  "through MPI: comm_allreduce and friends)", fn, name, p);
	if (a.device != dev)
		hug_panic("%s: %s = %p is on GPU %d, the communicator on GPU %d", fn,
			  name, p, a.device, dev);
}

/* Waits until `ev` has completed, or with ev NULL until everything issued
 * on the legacy default stream has, watching NCCL's asynchronous error
 * state so that a failure NCCL detects in its proxy thread aborts instead
 * of spinning forever. */
static void wait_for(ncclComm_t nc, cudaEvent_t ev, const char *fn)
{
	for (;;) {
		cudaError_t e = ev ? cudaEventQuery(ev) : cudaStreamQuery(0);
		if (e == cudaSuccess)
			return;
		if (e != cudaErrorNotReady)
			hug_panic("rank %d: %s failed: %s", world_rank(), fn,
				  cudaGetErrorString(e));
		ncclResult_t async = ncclSuccess;
		NCCL_CHECK(ncclCommGetAsyncError(nc, &async));
#if HUG_NCCL_HAS_IN_PROGRESS
		if (async == ncclInProgress)
			continue;
#endif
		if (async != ncclSuccess)
			nccl_check(async, fn, __FILE__, __LINE__);
	}
}

/* Waits for the collective just issued on the default stream. */
static void wait_default_stream(ncclComm_t nc, const char *fn)
{
	wait_for(nc, NULL, fn);
}

/* Agrees over `mc` (skipped when NULL) on whether every rank found its GPU:
 * 0 everywhere, or -1 everywhere with err naming the lowest failing rank
 * (its own reason on that rank), so that no rank is left waiting in NCCL
 * for one that returned. */
static int agree_on_device(MPI_Comm mc, int rank, int size, int mine, const char *why,
			   struct hug_error *err)
{
	int bad = mine == 0 ? INT_MAX : rank;
	if (mc != MPI_COMM_NULL)
		MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MIN, mc));
	if (bad == INT_MAX)
		return 0;
	if (mine != 0) {
		char host[64] = "?";
		gethostname(host, sizeof(host) - 1);
		const char *vis = getenv("CUDA_VISIBLE_DEVICES");
		return hug_error_set(err, "rank %d (host %s, CUDA_VISIBLE_DEVICES=%s): %s",
				     world_rank(), host, vis ? vis : "unset", why);
	}
	return hug_error_set(err, "rank %d of this %d-rank group (group numbering) found "
			     "no GPU; its own message says why", bad, size);
}

int comm_nccl_init(struct comm *c, int local_rank, struct hug_error *err)
{
	if (c->nccl)
		return 0;
	HUG_ASSERT(c->size >= 1 && c->rank >= 0 && c->rank < c->size);
	HUG_ASSERT(c->mpi || c->size == 1);

	char why[384] = "";
	int dev = -1;
	int mine = pick_device(local_rank, &dev, why, sizeof(why));
	MPI_Comm mc = c->mpi ? *(MPI_Comm *)c->mpi : MPI_COMM_NULL;
	if (agree_on_device(mc, c->rank, c->size, mine, why, err))
		return -1;

	/* NCCL binds a communicator to the device current at init. */
	CUDA_CHECK(cudaSetDevice(dev));
	ncclUniqueId id;
	memset(&id, 0, sizeof(id));
	if (c->rank == 0)
		NCCL_CHECK(ncclGetUniqueId(&id));
	if (mc != MPI_COMM_NULL)
		MPI_CHECK(MPI_Bcast(&id, (int)sizeof(id), MPI_BYTE, 0, mc));
	ncclComm_t nc = NULL;
	NCCL_CHECK(ncclCommInitRank(&nc, c->size, id, c->rank));
	c->nccl = nc;
	return 0;
}

int comm_nccl_init_groups(struct parallel *p, int *device, struct hug_error *err)
{
	char why[384] = "";
	int dev = -1;
	int mine = pick_device(p->local_rank, &dev, why, sizeof(why));
	MPI_Comm world = p->world.mpi ? *(MPI_Comm *)p->world.mpi : MPI_COMM_NULL;
	if (agree_on_device(world, p->world_rank, p->world_size, mine, why, err))
		return -1;
	CUDA_CHECK(cudaSetDevice(dev));
	/* Same order on every process: tensor-parallel, then data-parallel. */
	if (p->tp_group.size > 1 && comm_nccl_init(&p->tp_group, p->local_rank, err))
		return -1;
	if (p->dp_group.size > 1 && comm_nccl_init(&p->dp_group, p->local_rank, err))
		return -1;
	*device = dev;
	return 0;
}

void comm_nccl_free_groups(struct parallel *p)
{
	comm_nccl_free(&p->dp_group);
	comm_nccl_free(&p->tp_group);
	comm_nccl_free(&p->world);
}

int comm_nccl_device(const struct comm *c)
{
	int dev = -1;
	if (c->nccl)
		NCCL_CHECK(ncclCommCuDevice((ncclComm_t)c->nccl, &dev));
	return dev;
}

void comm_nccl_allreduce(const struct comm *c, void *buf, int64_t n, enum dtype dt,
			 enum comm_op op)
{
	int dev;
	ncclComm_t nc = prepare(c, __func__, n, &dev);
	if (n == 0)
		return;
	check_ptr(__func__, "buf", buf, dev);
	HUG_ASSERT(op == COMM_SUM || op == COMM_MAX);
	ncclRedOp_t rop = op == COMM_MAX ? ncclMax : ncclSum;
	NCCL_CHECK(ncclAllReduce(buf, buf, (size_t)n, nccl_type(dt), rop, nc, 0));
	wait_default_stream(nc, "ncclAllReduce");
}

/* prepare for a collective from `send` into `recv`, both checked to be on
 * the communicator's device; NULL when n == 0 (nothing to do). */
static ncclComm_t prepare_send_recv(const struct comm *c, const char *fn, int64_t n,
				    const void *send, const void *recv)
{
	int dev;
	ncclComm_t nc = prepare(c, fn, n, &dev);
	if (n == 0)
		return NULL;
	check_ptr(fn, "send", send, dev);
	check_ptr(fn, "recv", recv, dev);
	return nc;
}

void comm_nccl_allgather(const struct comm *c, const void *send, void *recv, int64_t n,
			 enum dtype dt)
{
	ncclComm_t nc = prepare_send_recv(c, __func__, n, send, recv);
	if (!nc)
		return;
	NCCL_CHECK(ncclAllGather(send, recv, (size_t)n, nccl_type(dt), nc, 0));
	wait_default_stream(nc, "ncclAllGather");
}

void comm_nccl_reduce_scatter(const struct comm *c, const void *send, void *recv,
			      int64_t n, enum dtype dt)
{
	ncclComm_t nc = prepare_send_recv(c, __func__, n, send, recv);
	if (!nc)
		return;
	NCCL_CHECK(ncclReduceScatter(send, recv, (size_t)n, nccl_type(dt), ncclSum, nc, 0));
	wait_default_stream(nc, "ncclReduceScatter");
}

void comm_nccl_broadcast(const struct comm *c, void *buf, int64_t n, enum dtype dt,
			 int root)
{
	int dev;
	ncclComm_t nc = prepare(c, __func__, n, &dev);
	HUG_ASSERT(root >= 0 && root < c->size);
	if (n == 0)
		return;
	check_ptr(__func__, "buf", buf, dev);
	NCCL_CHECK(ncclBroadcast(buf, buf, (size_t)n, nccl_type(dt), root, nc, 0));
	wait_default_stream(nc, "ncclBroadcast");
}

/* The side stream of the non-blocking collectives: one per process (one
 * GPU per process), non-blocking so that it neither waits for nor holds up
 * the backend's stream except through the events below. */
static cudaStream_t side_stream;

/* What a comm_request holds for NCCL (in its raw bytes). */
struct nccl_request {
	ncclComm_t nc;
	cudaEvent_t done; /* recorded on the side stream after the collective */
};
_Static_assert(sizeof(struct nccl_request) <= sizeof(((struct comm_request *)0)->req.raw),
	       "comm_request too small for an NCCL request");

/* Orders the side stream after the work issued so far on the backend's
 * stream (the kernels that produced the buffers), creating it on first
 * use. */
static void side_stream_start(void)
{
	if (!side_stream)
		CUDA_CHECK(cudaStreamCreateWithFlags(&side_stream, cudaStreamNonBlocking));
	cudaEvent_t ready;
	CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
	CUDA_CHECK(cudaEventRecord(ready, (cudaStream_t)hug_cuda_stream()));
	CUDA_CHECK(cudaStreamWaitEvent(side_stream, ready, 0));
	CUDA_CHECK(cudaEventDestroy(ready)); /* released once it has completed */
}

/* Records r's completion event after what was just issued on the side
 * stream. */
static void side_stream_request(ncclComm_t nc, struct comm_request *r)
{
	struct nccl_request q = { nc, NULL };
	CUDA_CHECK(cudaEventCreateWithFlags(&q.done, cudaEventDisableTiming));
	CUDA_CHECK(cudaEventRecord(q.done, side_stream));
	memcpy(r->req.raw, &q, sizeof(q));
	r->active = true;
}

void comm_nccl_iallreduce(const struct comm *c, void *buf, int64_t n, enum dtype dt,
			  struct comm_request *r)
{
	int dev;
	ncclComm_t nc = prepare(c, __func__, n, &dev);
	r->active = false;
	r->device = true;
	if (n == 0)
		return;
	check_ptr(__func__, "buf", buf, dev);
	side_stream_start();
	NCCL_CHECK(ncclAllReduce(buf, buf, (size_t)n, nccl_type(dt), ncclSum, nc, side_stream));
	side_stream_request(nc, r);
}

void comm_nccl_ireduce_scatterv(const struct comm *c, const void *send, void *recv,
				const int *counts, const int *displs, enum dtype dt,
				struct comm_request *r)
{
	int dev;
	ncclComm_t nc = prepare(c, __func__, 0, &dev);
	r->active = false;
	r->device = true;
	size_t es = dtype_size(dt);
	side_stream_start();
	NCCL_CHECK(ncclGroupStart());
	for (int k = 0; k < c->size; k++) {
		if (!counts[k])
			continue;
		const char *from = (const char *)send + (size_t)displs[k] * es;
		NCCL_CHECK(ncclReduce(from, k == c->rank ? recv : NULL, (size_t)counts[k],
				      nccl_type(dt), ncclSum, k, nc, side_stream));
	}
	NCCL_CHECK(ncclGroupEnd());
	side_stream_request(nc, r);
}

void comm_nccl_iallgatherv(const struct comm *c, void *buf, const int *counts,
			   const int *displs, enum dtype dt, struct comm_request *r)
{
	int dev;
	ncclComm_t nc = prepare(c, __func__, 0, &dev);
	r->active = false;
	r->device = true;
	size_t es = dtype_size(dt);
	side_stream_start();
	NCCL_CHECK(ncclGroupStart());
	for (int k = 0; k < c->size; k++) {
		if (!counts[k])
			continue;
		char *at = (char *)buf + (size_t)displs[k] * es;
		NCCL_CHECK(ncclBroadcast(at, at, (size_t)counts[k], nccl_type(dt), k, nc,
					 side_stream));
	}
	NCCL_CHECK(ncclGroupEnd());
	side_stream_request(nc, r);
}

void comm_nccl_wait(struct comm_request *r)
{
	if (!r->active)
		return;
	struct nccl_request q;
	memcpy(&q, r->req.raw, sizeof(q));
	wait_for(q.nc, q.done, "ncclAllReduce (non-blocking)");
	CUDA_CHECK(cudaStreamWaitEvent((cudaStream_t)hug_cuda_stream(), q.done, 0));
	CUDA_CHECK(cudaEventDestroy(q.done));
	r->active = false;
}

void comm_nccl_free(struct comm *c)
{
	if (!c->nccl)
		return;
	int dev;
	ncclComm_t nc = prepare(c, __func__, 0, &dev);
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0)
	NCCL_CHECK(ncclCommFinalize(nc));
#endif
	NCCL_CHECK(ncclCommDestroy(nc));
	c->nccl = NULL;
}

#endif /* HUG_CUDA && HUG_MPI */
