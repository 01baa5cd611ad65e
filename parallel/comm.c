/* comm.c: the MPI communicator, process groups, and the world of one when
 * hug is built without MPI or not launched by mpirun/srun. */
#include "comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../autograd/transfer.h"
#include "../base/alloc.h"
#include "../base/panic.h"
#include "comm_nccl.h"

/* Singleton runs work too with Open MPI, but hug keeps them free of MPI
 * start-up: MPI_Init only under a launcher. */
bool parallel_launched(void)
{
	return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") ||
	       getenv("PMIX_RANK") || getenv("SLURM_PROCID") || getenv("MPI_LOCALNRANKS");
}

#ifdef HUG_MPI
#include <mpi.h>

#include "mpi_check.h"

static MPI_Datatype mpi_type(enum dtype dt)
{
	switch (dt) {
	case DT_F32: return MPI_FLOAT;
	case DT_F64: return MPI_DOUBLE;
	case DT_I32: return MPI_INT32_T;
	case DT_U8: return MPI_UINT8_T;
	default: hug_panic("comm: no MPI type for %s", dtype_name(dt));
	}
}

static MPI_Op mpi_op(enum comm_op op)
{
	return op == COMM_MAX ? MPI_MAX : op == COMM_MIN ? MPI_MIN : MPI_SUM;
}

void comm_mpi_check(int rc, const char *what, const char *file, int line)
{
	if (rc == MPI_SUCCESS)
		return;
	char msg[MPI_MAX_ERROR_STRING];
	int len = 0, init = 0, fin = 0, rank = 0;
	if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
		snprintf(msg, sizeof(msg), "MPI error %d", rc);
	MPI_Initialized(&init);
	MPI_Finalized(&fin);
	if (init && !fin)
		MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	hug_panic_at(file, line, "rank %d: %s failed: %s", rank, what, msg);
}

static int abort_rank;

static void abort_hook(void)
{
	fprintf(stderr, "hug: rank %d failed; aborting the job\n", abort_rank);
	fflush(stderr);
	MPI_Abort(MPI_COMM_WORLD, 1);
}


_Static_assert(sizeof(MPI_Request) <= sizeof(((struct comm_request *)0)->req),
	       "MPI_Request does not fit struct comm_request");

static void fill_collective(struct comm *c);

static void comm_from(struct comm *c, MPI_Comm m)
{
	MPI_Comm *h = hug_malloc(sizeof(*h));
	*h = m;
	c->mpi = h;
	MPI_Comm_rank(m, &c->rank);
	MPI_Comm_size(m, &c->size);
	fill_collective(c);
}

static void comm_free(struct comm *c)
{
	if (c->mpi) {
		MPI_Comm *h = c->mpi;
		if (*h != MPI_COMM_WORLD)
			MPI_Comm_free(h);
		hug_free(h);
	}
	memset(c, 0, sizeof(*c));
}

#define COMM_OF(c) (*(MPI_Comm *)(c)->mpi)
#endif

/* The ag_collective of a communicator: host memory over MPI; device
 * memory needs the NCCL path. */
static void collective_allreduce(void *state, void *buf, int64_t n, enum dtype dt,
				 bool max, enum device dev)
{
	const struct comm *c = state;
	if (dev != DEV_CPU && c->size > 1) {
#if defined(HUG_CUDA) && defined(HUG_MPI)
		comm_nccl_allreduce(c, buf, n, dt, max ? COMM_MAX : COMM_SUM);
		return;
#else
		hug_panic("comm: device all-reduce needs a build with CUDA and MPI (NCCL)");
#endif
	}
	comm_allreduce(c, buf, n, dt, max ? COMM_MAX : COMM_SUM);
}

static void fill_collective(struct comm *c)
{
	c->coll.state = c;
	c->coll.rank = c->rank;
	c->coll.size = c->size;
	c->coll.allreduce = collective_allreduce;
}

const struct ag_collective *comm_collective(const struct comm *c)
{
	return &c->coll;
}

static void single(struct comm *c)
{
	memset(c, 0, sizeof(*c));
	c->rank = 0;
	c->size = 1;
	fill_collective(c);
}

void parallel_single(struct parallel *p)
{
	memset(p, 0, sizeof(*p));
	single(&p->world);
	single(&p->tp_group);
	single(&p->dp_group);
	single(&p->pp_group);
	p->world_size = p->tp = p->dp = p->pp = 1;
}

int parallel_init(struct parallel *p, struct hug_error *err)
{
	(void)err;
	parallel_single(p);
#ifdef HUG_MPI
	if (!parallel_launched())
		return 0;
	int inited = 0;
	MPI_Initialized(&inited);
	if (!inited) {
		int provided;
		MPI_CHECK(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided));
		p->mpi_owned = true;
	}
	comm_from(&p->world, MPI_COMM_WORLD);
	p->world_rank = p->world.rank;
	p->world_size = p->world.size;
	p->dp = p->world_size;
	abort_rank = p->world_rank;
	hug_panic_set_hook(abort_hook);
	MPI_Comm local;
	MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, p->world_rank,
				      MPI_INFO_NULL, &local));
	MPI_Comm_rank(local, &p->local_rank);
	MPI_Comm_free(&local);
	comm_from(&p->dp_group, MPI_COMM_WORLD);
	p->dp_rank = p->world_rank;
#endif
	return 0;
}

int parallel_set_layout(struct parallel *p, int tensor, struct hug_error *err)
{
	return parallel_set_layout_pp(p, tensor, 1, err);
}

int parallel_set_layout_pp(struct parallel *p, int tensor, int pipeline,
			   struct hug_error *err)
{
	if (tensor < 1 || p->world_size % tensor)
		return hug_error_set(err, "parallel.tensor: %d does not divide the %d processes",
				     tensor, p->world_size);
	if (pipeline < 1 || p->world_size % (tensor * pipeline))
		return hug_error_set(err, "parallel.pipeline: %d x parallel.tensor %d does not "
				     "divide the %d processes", pipeline, tensor, p->world_size);
	p->tp = tensor;
	p->pp = pipeline;
	p->dp = p->world_size / (tensor * pipeline);
	p->tp_rank = p->world_rank % tensor;
	p->dp_rank = p->world_rank / tensor % p->dp;
	p->pp_rank = p->world_rank / (tensor * p->dp);
#ifdef HUG_MPI
	if (p->world.mpi) {
		comm_free(&p->tp_group);
		comm_free(&p->dp_group);
		comm_free(&p->pp_group);
		MPI_Comm tp, dp, pp;
		int stage = p->pp_rank, place = p->dp_rank * tensor + p->tp_rank;
		/* same (stage, dp_rank): one tensor-parallel group; same (stage,
		 * tp_rank): one data-parallel group; same (dp_rank, tp_rank): one
		 * pipeline */
		MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, stage * p->dp + p->dp_rank, p->tp_rank, &tp));
		MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, stage * tensor + p->tp_rank, p->dp_rank, &dp));
		MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, place, stage, &pp));
		comm_from(&p->tp_group, tp);
		comm_from(&p->dp_group, dp);
		comm_from(&p->pp_group, pp);
	}
#endif
	return 0;
}

_Noreturn void parallel_abort(const struct parallel *p, int code)
{
	fflush(stdout);
	fflush(stderr);
#ifdef HUG_MPI
	if (p->world.mpi)
		MPI_Abort(MPI_COMM_WORLD, code);
#else
	(void)p;
#endif
	exit(code);
}

int parallel_agree(const struct parallel *p, bool failed, int *first)
{
	int n = p->world.size > 1 ? p->world.size : 1;
	int *flags = hug_calloc((size_t)n, sizeof(int)), mine = failed, count = 0;
	comm_allgather(&p->world, &mine, flags, 1, DT_I32);
	if (first)
		*first = -1;
	for (int r = 0; r < n; r++) {
		if (flags[r] && first && *first < 0)
			*first = r;
		count += flags[r] != 0;
	}
	hug_free(flags);
	return count;
}

const char *parallel_host(void)
{
	static char host[256];
	if (!host[0] && gethostname(host, sizeof(host) - 1))
		snprintf(host, sizeof(host), "?");
	return host;
}

void parallel_finalize(struct parallel *p)
{
#if defined(HUG_CUDA) && defined(HUG_MPI)
	comm_nccl_free_groups(p); /* before the MPI communicators */
#endif
#ifdef HUG_MPI
	comm_free(&p->tp_group);
	comm_free(&p->dp_group);
	comm_free(&p->pp_group);
	comm_free(&p->world);
	if (p->mpi_owned) {
		hug_panic_set_hook(NULL);
		MPI_Finalize();
	}
#endif
	memset(p, 0, sizeof(*p));
}

void comm_allreduce(const struct comm *c, void *buf, int64_t n, enum dtype dt,
		    enum comm_op op)
{
	if (c->size <= 1 || n == 0)
		return;
#ifdef HUG_MPI
	HUG_ASSERT(n <= INT32_MAX);
	MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, mpi_type(dt), mpi_op(op), COMM_OF(c)));
#else
	(void)buf; (void)dt; (void)op;
#endif
}

void comm_allreduce_tensor(const struct comm *c, struct tensor *t, enum comm_op op)
{
	HUG_ASSERT(tensor_is_contiguous(t));
	if (t->device == DEV_CPU) {
		comm_allreduce(c, t->data, tensor_numel(t), t->dtype, op);
		return;
	}
	HUG_ASSERT(op != COMM_MIN); /* NCCL's path takes sum and max */
	c->coll.allreduce(c->coll.state, t->data, tensor_numel(t), t->dtype, op == COMM_MAX,
			  t->device);
}

/* In a world of one a gather or scatter is a copy: makes it and returns
 * true; false when there are other ranks. */
static bool alone(const struct comm *c, const void *send, void *recv, int64_t n,
		  enum dtype dt)
{
	if (c->size > 1)
		return false;
	if (send != recv)
		memcpy(recv, send, (size_t)n * dtype_size(dt));
	return true;
}

void comm_allgather(const struct comm *c, const void *send, void *recv, int64_t n,
		    enum dtype dt)
{
	if (alone(c, send, recv, n, dt))
		return;
#ifdef HUG_MPI
	HUG_ASSERT(n <= INT32_MAX);
	MPI_CHECK(MPI_Allgather(send, (int)n, mpi_type(dt), recv, (int)n, mpi_type(dt),
				COMM_OF(c)));
#endif
}

void comm_reduce_scatter(const struct comm *c, const void *send, void *recv, int64_t n,
			 enum dtype dt)
{
	if (alone(c, send, recv, n, dt))
		return;
#ifdef HUG_MPI
	HUG_ASSERT(n <= INT32_MAX);
	MPI_CHECK(MPI_Reduce_scatter_block(send, recv, (int)n, mpi_type(dt), MPI_SUM,
					   COMM_OF(c)));
#endif
}

/* All-gather (gather) or reduce-scatter (!gather) of tensors: MPI on the
 * host, a copy in a world of one, NCCL on a device. `small` is the side of
 * n elements (send of all-gather, recv of reduce-scatter); the other holds
 * c->size times as many. */
static void tensor_collective(const struct comm *c, bool gather, const struct tensor *send,
			      struct tensor *recv)
{
	const struct tensor *small = gather ? send : recv, *big = gather ? recv : send;
	HUG_ASSERT(small->dtype == big->dtype && small->device == big->device);
	HUG_ASSERT(tensor_is_contiguous(small) && tensor_is_contiguous(big));
	HUG_ASSERT(tensor_numel(big) == tensor_numel(small) * c->size);
	int64_t n = tensor_numel(small);
	if (send->device == DEV_CPU) {
		if (gather)
			comm_allgather(c, send->data, recv->data, n, send->dtype);
		else
			comm_reduce_scatter(c, send->data, recv->data, n, send->dtype);
	} else if (c->size <= 1) {
		if (recv->data != send->data)
			tensor_transfer(recv, send);
	} else {
#if defined(HUG_CUDA) && defined(HUG_MPI)
		if (gather)
			comm_nccl_allgather(c, send->data, recv->data, n, send->dtype);
		else
			comm_nccl_reduce_scatter(c, send->data, recv->data, n, send->dtype);
#else
		hug_panic("comm: device %s needs a build with CUDA and MPI (NCCL)",
			  gather ? "all-gather" : "reduce-scatter");
#endif
	}
}

void comm_allgather_tensor(const struct comm *c, const struct tensor *send,
			   struct tensor *recv)
{
	tensor_collective(c, true, send, recv);
}

void comm_reduce_scatter_tensor(const struct comm *c, const struct tensor *send,
				struct tensor *recv)
{
	tensor_collective(c, false, send, recv);
}

void comm_broadcast(const struct comm *c, void *buf, int64_t n, enum dtype dt, int root)
{
	if (c->size <= 1)
		return;
#ifdef HUG_MPI
	HUG_ASSERT(n <= INT32_MAX);
	MPI_CHECK(MPI_Bcast(buf, (int)n, mpi_type(dt), root, COMM_OF(c)));
#else
	(void)buf; (void)n; (void)dt; (void)root;
#endif
}

void comm_barrier(const struct comm *c)
{
	if (c->size <= 1)
		return;
#ifdef HUG_MPI
	MPI_CHECK(MPI_Barrier(COMM_OF(c)));
#endif
}

void comm_iallreduce(const struct comm *c, void *buf, int64_t n, enum dtype dt,
		     enum device dev, struct comm_request *r)
{
	r->active = false;
	r->device = false;
	if (c->size <= 1 || n == 0)
		return;
	if (dev != DEV_CPU) {
#if defined(HUG_CUDA) && defined(HUG_MPI)
		comm_nccl_iallreduce(c, buf, n, dt, r);
#else
		hug_panic("comm: device all-reduce needs a build with CUDA and MPI (NCCL)");
#endif
		return;
	}
#ifdef HUG_MPI
	HUG_ASSERT(n <= INT32_MAX);
	MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, mpi_type(dt), MPI_SUM, COMM_OF(c),
				 (MPI_Request *)r->req.raw));
	r->active = true;
#else
	(void)buf; (void)dt;
#endif
}

void comm_test(struct comm_request *r)
{
#ifdef HUG_MPI
	if (r->active && !r->device) {
		int done = 0;
		MPI_CHECK(MPI_Test((MPI_Request *)r->req.raw, &done, MPI_STATUS_IGNORE));
		if (done)
			r->active = false;
	}
#else
	(void)r;
#endif
}

void comm_wait(struct comm_request *r)
{
	if (!r->active)
		return;
#if defined(HUG_CUDA) && defined(HUG_MPI)
	if (r->device) {
		comm_nccl_wait(r);
		return;
	}
#endif
#ifdef HUG_MPI
	MPI_CHECK(MPI_Wait((MPI_Request *)r->req.raw, MPI_STATUS_IGNORE));
	r->active = false;
#endif
}

void comm_isend(const struct comm *c, const void *buf, int64_t n, enum dtype dt, int dest,
		int tag, struct comm_request *r)
{
	r->active = false;
	r->device = false;
	if (c->size <= 1)
		hug_panic("comm_isend: a group of one has no rank %d", dest);
#ifdef HUG_MPI
	HUG_ASSERT(n <= INT32_MAX);
	MPI_CHECK(MPI_Isend(buf, (int)n, mpi_type(dt), dest, tag, COMM_OF(c),
			    (MPI_Request *)r->req.raw));
	r->active = true;
#else
	(void)buf; (void)n; (void)dt; (void)tag;
#endif
}

void comm_recv(const struct comm *c, void *buf, int64_t n, enum dtype dt, int src, int tag)
{
	if (c->size <= 1)
		hug_panic("comm_recv: a group of one has no rank %d", src);
#ifdef HUG_MPI
	HUG_ASSERT(n <= INT32_MAX);
	MPI_CHECK(MPI_Recv(buf, (int)n, mpi_type(dt), src, tag, COMM_OF(c), MPI_STATUS_IGNORE));
#else
	(void)buf; (void)n; (void)dt; (void)tag;
#endif
}

void comm_group_new(const struct comm *c, bool member, struct comm *out)
{
	single(out);
#ifdef HUG_MPI
	if (!c->mpi)
		return;
	MPI_Comm g;
	MPI_CHECK(MPI_Comm_split(COMM_OF(c), member ? 0 : MPI_UNDEFINED, c->rank, &g));
	if (member)
		comm_from(out, g);
#else
	(void)c;
	(void)member;
#endif
}

void comm_group_free(struct comm *g)
{
#ifdef HUG_MPI
	comm_free(g);
#else
	memset(g, 0, sizeof(*g));
#endif
}

void comm_ireduce_scatterv(const struct comm *c, const void *send, void *recv,
			   const int *counts, const int *displs, enum dtype dt,
			   enum device dev, struct comm_request *r)
{
	r->active = false;
	r->device = false;
	if (c->size <= 1) {
		if (counts[0] && send != recv)
			ag_memcpy(recv, dev, send, dev, (size_t)counts[0] * dtype_size(dt));
		return;
	}
	if (dev != DEV_CPU) {
#if defined(HUG_CUDA) && defined(HUG_MPI)
		comm_nccl_ireduce_scatterv(c, send, recv, counts, displs, dt, r);
#else
		hug_panic("comm: device reduce-scatter needs a build with CUDA and MPI (NCCL)");
#endif
		return;
	}
#ifdef HUG_MPI
	(void)displs; /* MPI_Reduce_scatter's pieces are packed in rank order */
	MPI_CHECK(MPI_Ireduce_scatter(send, recv, counts, mpi_type(dt), MPI_SUM, COMM_OF(c),
				      (MPI_Request *)r->req.raw));
	r->active = true;
#else
	(void)send; (void)recv; (void)dt; (void)displs;
#endif
}

void comm_iallgatherv(const struct comm *c, void *buf, const int *counts, const int *displs,
		      enum dtype dt, enum device dev, struct comm_request *r)
{
	r->active = false;
	r->device = false;
	if (c->size <= 1)
		return;
	if (dev != DEV_CPU) {
#if defined(HUG_CUDA) && defined(HUG_MPI)
		comm_nccl_iallgatherv(c, buf, counts, displs, dt, r);
#else
		hug_panic("comm: device all-gather needs a build with CUDA and MPI (NCCL)");
#endif
		return;
	}
#ifdef HUG_MPI
	MPI_CHECK(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs,
				  mpi_type(dt), COMM_OF(c), (MPI_Request *)r->req.raw));
	r->active = true;
#else
	(void)buf; (void)dt; (void)counts; (void)displs;
#endif
}
