// nccl.cpp: the NCCL calls of include/nccl.h over MPI. Each process is one
// emulated GPU. A communicator of one rank copies; one of several ranks is
// an MPI communicator split from MPI_COMM_WORLD by the unique id (so every
// world rank must create its communicators in the same order, as hug does:
// tensor-parallel, then data-parallel). A collective gathers every rank's
// buffer and reduces in rank order, so results are deterministic (real
// NCCL reduces in its own order: bits may differ from it, never between two
// emulated runs). Buffers must be device memory of the communicator's
// device, as NCCL requires.
#include <nccl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#ifdef HUG_MPI
#include <mpi.h>
#endif

#include "cuemu_internal.h"

extern "C" {
#include "../../autograd/dtype.h"
}

struct cuemu_nccl_comm {
	int nranks, rank, device;
#ifdef HUG_MPI
	MPI_Comm mpi;
#endif
};

const char *ncclGetErrorString(ncclResult_t r)
{
	switch (r) {
	case ncclSuccess: return "no error";
	case ncclUnhandledCudaError: return "unhandled cuda error";
	case ncclSystemError: return "unhandled system error";
	case ncclInternalError: return "internal error";
	case ncclInvalidArgument: return "invalid argument";
	case ncclInvalidUsage: return "invalid usage";
	case ncclRemoteError: return "remote process exited or there was a network error";
	case ncclInProgress: return "NCCL operation in progress";
	}
	return "unknown result code";
}

const char *ncclGetLastError(ncclComm_t) { return ""; }

static int world_rank()
{
#ifdef HUG_MPI
	int init = 0, r = 0;
	MPI_Initialized(&init);
	if (init)
		MPI_Comm_rank(MPI_COMM_WORLD, &r);
	return r;
#else
	return 0;
#endif
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id)
{
	static int serial;
	memset(id, 0, sizeof *id);
	int v[2] = { world_rank(), serial++ };
	memcpy(id->internal, v, sizeof v);
	return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank)
{
	if (nranks < 1 || rank < 0 || rank >= nranks)
		return ncclInvalidArgument;
	cuemu_nccl_comm *c = new cuemu_nccl_comm;
	c->nranks = nranks;
	c->rank = rank;
	c->device = cuemu_current_device();
#ifdef HUG_MPI
	c->mpi = MPI_COMM_NULL;
	if (nranks > 1) {
		int v[2];
		memcpy(v, id.internal, sizeof v);
		int size = 0;
		MPI_Comm_split(MPI_COMM_WORLD, v[0] * 4096 + v[1] % 4096, rank, &c->mpi);
		MPI_Comm_size(c->mpi, &size);
		if (size != nranks) {
			cuemu_report("ncclCommInitRank: %d ranks share this unique id, %d expected "
				     "(communicators created in different orders on different "
				     "ranks?)",
				     size, nranks);
			return ncclInvalidUsage;
		}
	}
#else
	(void)id;
	if (nranks > 1) {
		cuemu_report("ncclCommInitRank of %d ranks in a build without MPI", nranks);
		return ncclInvalidUsage;
	}
#endif
	*comm = c;
	return ncclSuccess;
}

ncclResult_t ncclCommCuDevice(ncclComm_t c, int *device)
{
	if (!c)
		return ncclInvalidArgument;
	*device = c->device;
	return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t c, ncclResult_t *async)
{
	*async = ncclSuccess;
	return c ? ncclSuccess : ncclInvalidArgument;
}

ncclResult_t ncclCommFinalize(ncclComm_t c) { return c ? ncclSuccess : ncclInvalidArgument; }

ncclResult_t ncclCommDestroy(ncclComm_t c)
{
	if (!c)
		return ncclInvalidArgument;
#ifdef HUG_MPI
	if (c->mpi != MPI_COMM_NULL)
		MPI_Comm_free(&c->mpi);
#endif
	delete c;
	return ncclSuccess;
}

static size_t type_size(ncclDataType_t t)
{
	switch (t) {
	case ncclInt8: case ncclUint8: return 1;
	case ncclFloat16: case ncclBfloat16: return 2;
	case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
	case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
	}
	return 0;
}

static double get(const void *p, ncclDataType_t t, size_t i)
{
	switch (t) {
	case ncclInt8: return ((const int8_t *)p)[i];
	case ncclUint8: return ((const uint8_t *)p)[i];
	case ncclInt32: return ((const int32_t *)p)[i];
	case ncclUint32: return ((const uint32_t *)p)[i];
	case ncclInt64: return (double)((const int64_t *)p)[i];
	case ncclUint64: return (double)((const uint64_t *)p)[i];
	case ncclFloat16: return f16_to_f32(((const uint16_t *)p)[i]);
	case ncclBfloat16: return bf16_to_f32(((const uint16_t *)p)[i]);
	case ncclFloat32: return ((const float *)p)[i];
	case ncclFloat64: return ((const double *)p)[i];
	}
	return 0;
}

static void put(void *p, ncclDataType_t t, size_t i, double v)
{
	switch (t) {
	case ncclInt8: ((int8_t *)p)[i] = (int8_t)v; break;
	case ncclUint8: ((uint8_t *)p)[i] = (uint8_t)v; break;
	case ncclInt32: ((int32_t *)p)[i] = (int32_t)v; break;
	case ncclUint32: ((uint32_t *)p)[i] = (uint32_t)v; break;
	case ncclInt64: ((int64_t *)p)[i] = (int64_t)v; break;
	case ncclUint64: ((uint64_t *)p)[i] = (uint64_t)v; break;
	case ncclFloat16: ((uint16_t *)p)[i] = f32_to_f16((float)v); break;
	case ncclBfloat16: ((uint16_t *)p)[i] = f32_to_bf16((float)v); break;
	case ncclFloat32: ((float *)p)[i] = (float)v; break;
	case ncclFloat64: ((double *)p)[i] = v; break;
	}
}

// Checks a buffer argument: device memory of the communicator's device.
static bool check_buf(const char *fn, const char *what, ncclComm_t c, const void *p, size_t bytes)
{
	int dev = -1;
	if (!cuemu_is_device(p, bytes, &dev)) {
		cuemu_report("%s: %s %p + %zu bytes is not inside one device allocation", fn, what,
			     p, bytes);
		return false;
	}
	if (dev != c->device) {
		cuemu_report("%s: %s is on device %d, the communicator on %d", fn, what, dev,
			     c->device);
		return false;
	}
	return true;
}

// Every rank's `bytes` from `send`, in rank order, into `all`.
static void gather_all(ncclComm_t c, const void *send, size_t bytes, std::vector<char> &all)
{
	all.resize(bytes * (size_t)c->nranks);
	if (c->nranks == 1) {
		memcpy(all.data(), send, bytes);
		return;
	}
#ifdef HUG_MPI
	// MPI counts are ints: gathered in pieces of at most 1 GiB a rank
	std::vector<char> mine((const char *)send, (const char *)send + bytes);
	const size_t step = (size_t)1 << 30;
	for (size_t off = 0; off < bytes; off += step) {
		size_t len = bytes - off < step ? bytes - off : step;
		std::vector<char> part(len * (size_t)c->nranks);
		MPI_Allgather(mine.data() + off, (int)len, MPI_BYTE, part.data(), (int)len,
			      MPI_BYTE, c->mpi);
		for (int r = 0; r < c->nranks; r++)
			memcpy(all.data() + (size_t)r * bytes + off, part.data() + (size_t)r * len,
			       len);
	}
#endif
}

// recv[i] = op over ranks (in rank order) of their element first + i.
static void reduce(const std::vector<char> &all, size_t bytes, int nranks, ncclDataType_t dt,
		   ncclRedOp_t op, size_t first, size_t count, void *recv)
{
	for (size_t i = 0; i < count; i++) {
		double acc = 0;
		for (int r = 0; r < nranks; r++) {
			double v = get(all.data() + (size_t)r * bytes, dt, first + i);
			if (r == 0)
				acc = v;
			else if (op == ncclSum || op == ncclAvg)
				acc = dt == ncclFloat32 || dt == ncclFloat16 || dt == ncclBfloat16
					      ? (double)((float)acc + (float)v)
					      : acc + v;
			else if (op == ncclProd)
				acc *= v;
			else if (op == ncclMax)
				acc = v > acc ? v : acc;
			else
				acc = v < acc ? v : acc;
			// low-precision sums round at every step, as a reduction in
			// the element type does
			if (dt == ncclFloat16 || dt == ncclBfloat16) {
				char tmp[2];
				put(tmp, dt, 0, acc);
				acc = get(tmp, dt, 0);
			}
		}
		if (op == ncclAvg)
			acc /= nranks;
		put(recv, dt, i, acc);
	}
}

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t dt,
			   ncclRedOp_t op, ncclComm_t c, cudaStream_t)
{
	if (!c || !type_size(dt))
		return ncclInvalidArgument;
	size_t bytes = count * type_size(dt);
	if (!count)
		return ncclSuccess;
	if (!check_buf("ncclAllReduce", "sendbuff", c, send, bytes) ||
	    !check_buf("ncclAllReduce", "recvbuff", c, recv, bytes))
		return ncclInvalidArgument;
	cuemu_device_scope scope;
	std::vector<char> all;
	gather_all(c, send, bytes, all);
	reduce(all, bytes, c->nranks, dt, op, 0, count, recv);
	return ncclSuccess;
}

ncclResult_t ncclAllGather(const void *send, void *recv, size_t count, ncclDataType_t dt,
			   ncclComm_t c, cudaStream_t)
{
	if (!c || !type_size(dt))
		return ncclInvalidArgument;
	size_t bytes = count * type_size(dt);
	if (!count)
		return ncclSuccess;
	if (!check_buf("ncclAllGather", "sendbuff", c, send, bytes) ||
	    !check_buf("ncclAllGather", "recvbuff", c, recv, bytes * (size_t)c->nranks))
		return ncclInvalidArgument;
	cuemu_device_scope scope;
	std::vector<char> all;
	gather_all(c, send, bytes, all);
	memcpy(recv, all.data(), all.size());
	return ncclSuccess;
}

ncclResult_t ncclReduceScatter(const void *send, void *recv, size_t count, ncclDataType_t dt,
			       ncclRedOp_t op, ncclComm_t c, cudaStream_t)
{
	if (!c || !type_size(dt))
		return ncclInvalidArgument;
	size_t bytes = count * type_size(dt) * (size_t)c->nranks;
	if (!count)
		return ncclSuccess;
	if (!check_buf("ncclReduceScatter", "sendbuff", c, send, bytes) ||
	    !check_buf("ncclReduceScatter", "recvbuff", c, recv, count * type_size(dt)))
		return ncclInvalidArgument;
	cuemu_device_scope scope;
	std::vector<char> all;
	gather_all(c, send, bytes, all);
	reduce(all, bytes, c->nranks, dt, op, (size_t)c->rank * count, count, recv);
	return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t dt,
			   int root, ncclComm_t c, cudaStream_t)
{
	if (!c || !type_size(dt) || root < 0 || root >= c->nranks)
		return ncclInvalidArgument;
	size_t bytes = count * type_size(dt);
	if (!count)
		return ncclSuccess;
	if ((c->rank == root && !check_buf("ncclBroadcast", "sendbuff", c, send, bytes)) ||
	    !check_buf("ncclBroadcast", "recvbuff", c, recv, bytes))
		return ncclInvalidArgument;
	cuemu_device_scope scope;
	if (c->rank == root && send != recv)
		memmove(recv, send, bytes);
#ifdef HUG_MPI
	if (c->nranks > 1) {
		if (bytes > (size_t)1 << 31) {
			cuemu_report("ncclBroadcast of %zu bytes: the emulator sends at most 2 GiB",
				     bytes);
			return ncclInvalidArgument;
		}
		std::vector<char> tmp((const char *)recv, (const char *)recv + bytes);
		MPI_Bcast(tmp.data(), (int)bytes, MPI_BYTE, root, c->mpi);
		memcpy(recv, tmp.data(), bytes);
	}
#endif
	return ncclSuccess;
}

ncclResult_t ncclReduce(const void *send, void *recv, size_t count, ncclDataType_t dt,
			ncclRedOp_t op, int root, ncclComm_t c, cudaStream_t)
{
	if (!c || !type_size(dt) || root < 0 || root >= c->nranks)
		return ncclInvalidArgument;
	size_t bytes = count * type_size(dt);
	if (!count)
		return ncclSuccess;
	if (!check_buf("ncclReduce", "sendbuff", c, send, bytes) ||
	    (c->rank == root && !check_buf("ncclReduce", "recvbuff", c, recv, bytes)))
		return ncclInvalidArgument;
	cuemu_device_scope scope;
	std::vector<char> all;
	gather_all(c, send, bytes, all);
	if (c->rank == root)
		reduce(all, bytes, c->nranks, dt, op, 0, count, recv);
	return ncclSuccess;
}

ncclResult_t ncclGroupStart(void) { return ncclSuccess; }
ncclResult_t ncclGroupEnd(void) { return ncclSuccess; }
