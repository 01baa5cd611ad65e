/* comm.h: communicators and process groups. A job launched by mpirun (or
 * srun) has world_size processes; parallel_init splits them into
 * tensor-parallel groups of `tensor` consecutive ranks and data-parallel
 * groups of the ranks with the same tensor-parallel rank (Megatron's
 * layout: rank = dp_rank * tensor + tp_rank). With pipeline stages the
 * order is tensor innermost, then data, then pipeline:
 * rank = (pp_rank * dp + dp_rank) * tensor + tp_rank, so a stage's tensor
 * and data groups are consecutive ranks and the pipeline group links the
 * ranks with the same (dp_rank, tp_rank). Collectives run over MPI on
 * host tensors and over NCCL on device tensors. A build without MPI (or a
 * process not launched by mpirun) is a world of one, where every
 * collective is the identity. */
#ifndef HUG_PARALLEL_COMM_H
#define HUG_PARALLEL_COMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../autograd/node.h"
#include "../base/error.h"

struct comm {
	int rank, size;
	void *mpi;        /* MPI_Comm (NULL in a world of one) */
	void *nccl;       /* ncclComm_t, created on first device use */
	struct ag_collective coll; /* for autograd's tensor-parallel ops */
};

struct parallel {
	int world_rank, world_size;
	int local_rank;   /* rank among the processes of this node (GPU index) */
	int tp, dp, pp;   /* degrees: tp * dp * pp == world_size */
	int tp_rank, dp_rank, pp_rank;
	struct comm world, tp_group, dp_group;
	struct comm pp_group; /* same (dp_rank, tp_rank), ordered by pp_rank */
	bool mpi_owned;   /* parallel_init called MPI_Init */
};

enum comm_op {
	COMM_SUM,
	COMM_MAX,
	COMM_MIN,
};

/* Initialises MPI when hug was built with it and the process runs under a
 * launcher (else a world of one), finds the local rank from a
 * shared-memory split, and installs a panic hook that calls MPI_Abort so a
 * failing rank takes the job down with its message. Groups come from
 * parallel_set_layout. 0 or -1 with err. */
int parallel_init(struct parallel *p, struct hug_error *err);

/* A world of one process without touching MPI (for single-process use of
 * code that takes a struct parallel). */
void parallel_single(struct parallel *p);

/* Splits the world into tensor-parallel groups of `tensor` ranks and
 * data-parallel groups (world_size must be a multiple of tensor). */
int parallel_set_layout(struct parallel *p, int tensor, struct hug_error *err);

/* As parallel_set_layout with `pipeline` stages as well (world_size must
 * be a multiple of tensor x pipeline); the rank order is in the comment at
 * the top of this file. */
int parallel_set_layout_pp(struct parallel *p, int tensor, int pipeline,
			   struct hug_error *err);

/* Ends every process of the job with exit status `code` (MPI_Abort); in a
 * world of one, exit(code). Does not return. */
_Noreturn void parallel_abort(const struct parallel *p, int code);

/* The set-up agreement: a collective over the world where every rank
 * reports whether its last set-up phase failed. Returns the number of
 * ranks that failed (the same on every rank; 0 when all succeeded) and sets
 * *first (may be NULL) to the lowest failing world rank, or -1. A rank
 * that never arrives (it died) ends the job through the launcher; one that
 * fails inside the collective aborts it (hug_panic's MPI_Abort hook). In a
 * world of one, returns `failed`. */
int parallel_agree(const struct parallel *p, bool failed, int *first);

/* Whether a launcher (mpirun, srun, ...) started this process, from its
 * environment. Open MPI gives its ranks a pseudo-terminal for stdout even
 * when mpirun's own stdout is a file, so isatty() cannot tell. */
bool parallel_launched(void);

/* This process's host name (static storage; "?" when unknown), for
 * messages of the form "rank N (host): ...". */
const char *parallel_host(void);

/* Frees the groups and finalises MPI if parallel_init initialised it. */
void parallel_finalize(struct parallel *p);

/* True on the process that prints and writes files (world rank 0). */
static inline bool parallel_is_main(const struct parallel *p)
{
	return p->world_rank == 0;
}

/* In-place all-reduce of n elements of dtype dt at buf (host memory). */
void comm_allreduce(const struct comm *c, void *buf, int64_t n, enum dtype dt,
		    enum comm_op op);
/* In-place all-reduce of a tensor (contiguous; host or device). */
void comm_allreduce_tensor(const struct comm *c, struct tensor *t, enum comm_op op);
/* All-gather: every rank contributes n elements from `send`; `recv`
 * receives size * n elements in rank order. */
void comm_allgather(const struct comm *c, const void *send, void *recv, int64_t n,
		    enum dtype dt);
/* Reduce-scatter (sum): `send` holds size * n elements; rank r receives the
 * sum over ranks of elements [r n, (r + 1) n) in `recv`. */
void comm_reduce_scatter(const struct comm *c, const void *send, void *recv, int64_t n,
			 enum dtype dt);
/* comm_allgather and comm_reduce_scatter on contiguous tensors of the same
 * dtype in host memory (MPI) or device memory (NCCL): `recv` of allgather
 * and `send` of reduce-scatter hold size times the other's elements. */
void comm_allgather_tensor(const struct comm *c, const struct tensor *send,
			   struct tensor *recv);
void comm_reduce_scatter_tensor(const struct comm *c, const struct tensor *send,
				struct tensor *recv);
/* Broadcast n elements from rank `root`. */
void comm_broadcast(const struct comm *c, void *buf, int64_t n, enum dtype dt, int root);
/* Waits for every rank of the communicator. */
void comm_barrier(const struct comm *c);

/* Non-blocking in-place all-reduce (sum) for overlapping communication
 * with backward; comm_wait completes it. `dev` is where buf lives: host
 * memory goes over MPI (MPI_Iallreduce); device memory over NCCL on a side
 * stream that first waits for the work issued so far on the CUDA backend's
 * stream, so buf may still be in the making there when this is called
 * (comm_nccl_iallreduce). In a world of one both are no-ops. */
struct comm_request {
	bool active;
	bool device;      /* an NCCL request */
	union {
		void *p;
		long long ll;
		unsigned char raw[32];
	} req;            /* an MPI_Request, or the NCCL request, stored in place */
};
void comm_iallreduce(const struct comm *c, void *buf, int64_t n, enum dtype dt,
		     enum device dev, struct comm_request *r);
/* Makes progress on outstanding requests without blocking (MPI; NCCL
 * progresses on its own). */
void comm_test(struct comm_request *r);
/* Returns when r's result is in place: for MPI in host memory; for NCCL
 * when the collective has finished on the device, with the backend's
 * stream ordered after it. */
void comm_wait(struct comm_request *r);

/* Point-to-point on host memory (MPI): a non-blocking send of n elements
 * to rank `dest` of c with `tag` (comm_wait completes it; buf must stay
 * valid until then), and a blocking receive from `src`. In a world of one
 * they are errors (there is nobody to talk to). */
void comm_isend(const struct comm *c, const void *buf, int64_t n, enum dtype dt, int dest,
		int tag, struct comm_request *r);
void comm_recv(const struct comm *c, void *buf, int64_t n, enum dtype dt, int src, int tag);

/* A sub-communicator of c holding the ranks that pass `member` true,
 * ordered by their rank in c (collective over c). Non-members get a world
 * of one. Free with comm_group_free. */
void comm_group_new(const struct comm *c, bool member, struct comm *out);
void comm_group_free(struct comm *g);
/* Non-blocking reduce-scatter (sum) with uneven pieces, for ZeRO-2/3:
 * `send` holds the sum of counts[0..size) elements; rank r receives the
 * sum over ranks of its piece (counts[r] elements from element displs[r],
 * displs ascending and packed) in `recv` (unused when counts[r] is 0).
 * counts and displs must stay valid until comm_wait (MPI reads them while
 * the operation runs). `dev` as for
 * comm_iallreduce: MPI_Ireduce_scatter for host memory, NCCL (one
 * ncclReduce per rank with a piece, grouped, on the side stream) for
 * device memory. comm_wait completes it. */
void comm_ireduce_scatterv(const struct comm *c, const void *send, void *recv,
			   const int *counts, const int *displs, enum dtype dt,
			   enum device dev, struct comm_request *r);
/* Non-blocking in-place all-gather with uneven pieces: rank r's piece
 * (counts[r] elements from element displs[r] of `buf`, kept valid until
 * comm_wait) is already in place; afterwards every rank holds every piece.
 * MPI_Iallgatherv for host memory, NCCL (one ncclBroadcast per piece,
 * grouped, on the side stream) for device memory. comm_wait completes it. */
void comm_iallgatherv(const struct comm *c, void *buf, const int *counts, const int *displs,
		      enum dtype dt, enum device dev, struct comm_request *r);

/* The collective autograd's tensor-parallel ops call (ag_tp_copy/reduce). */
const struct ag_collective *comm_collective(const struct comm *c);

#endif
