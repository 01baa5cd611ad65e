/* comm_nccl.h: the NCCL half of the communicator, for tensors in device
 * memory. comm.c keeps MPI for host buffers and hands device buffers here.
 * Built only when hug has both CUDA and MPI (HUG_CUDA and HUG_MPI): a
 * process without MPI is a world of one, where every collective is the
 * identity and NCCL is never needed. No CUDA or NCCL types appear here;
 * the ncclComm_t lives in struct comm's `nccl` pointer.
 *
 * Every call is a collective: all ranks of the communicator make the same
 * calls in the same order, with the same n, dtype and root. Collectives
 * run on the calling thread's legacy default stream of the communicator's
 * GPU and return when the result is in place (they synchronise), except
 * comm_nccl_iallreduce, which runs on a side stream and is completed by
 * comm_nccl_wait. A failing
 * NCCL or CUDA call panics (file:line, the library's message, the world
 * rank), which under MPI takes the whole job down through MPI_Abort. */
#ifndef HUG_PARALLEL_COMM_NCCL_H
#define HUG_PARALLEL_COMM_NCCL_H

#if defined(HUG_CUDA) && defined(HUG_MPI)

#include <stdint.h>

#include "../base/error.h"
#include "comm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates c->nccl for communicator `c` (c->rank, c->size, and c->mpi, a
 * pointer to its MPI_Comm, already set; c->mpi may be NULL only when
 * c->size is 1). Selects the process's GPU first: device `local_rank`, or
 * device 0 when the process sees exactly one GPU (a launcher that binds
 * one GPU per task through CUDA_VISIBLE_DEVICES). Rank 0 makes the NCCL
 * unique id and broadcasts it over c->mpi; every rank then joins with
 * ncclCommInitRank.
 *
 * Collective over c->mpi: call it on every rank of `c`, and create several
 * communicators (world, tensor-parallel, data-parallel) in the same order
 * on every process, or NCCL's initialisation deadlocks. A second call on a
 * communicator that already has c->nccl does nothing and returns 0.
 *
 * Returns 0, or -1 with `err` naming the rank when some rank of `c` has no
 * GPU for its local rank; that check is agreed over c->mpi first, so every
 * rank returns -1 together instead of leaving the others waiting inside
 * NCCL. Library failures panic. */
int comm_nccl_init(struct comm *c, int local_rank, struct hug_error *err);

/* The usual set-up: picks this process's GPU as comm_nccl_init does, agrees
 * over the world that every rank has one, makes it current, and creates
 * NCCL communicators for the tensor-parallel and then the data-parallel
 * group of `p` (after parallel_set_layout), each only when it has more than
 * one rank (collectives over one rank never reach NCCL). Call it on every
 * process. The world communicator gets none; comm_nccl_init(&p->world, ..)
 * adds one if needed. Stores the GPU index in *device, for hug_cuda_init,
 * so that the CUDA backend and NCCL use the same GPU. 0, or -1 with err
 * on every rank (see comm_nccl_init). */
int comm_nccl_init_groups(struct parallel *p, int *device, struct hug_error *err);

/* comm_nccl_free on p's data-parallel, tensor-parallel and world
 * communicators (those without NCCL are skipped). Collective; call it
 * before parallel_finalize frees the MPI communicators. */
void comm_nccl_free_groups(struct parallel *p);

/* The GPU index of c's NCCL communicator, or -1 when c has none. */
int comm_nccl_device(const struct comm *c);

/* In-place all-reduce (sum or max) of n elements of dtype dt at `buf`, a
 * pointer into device memory of the communicator's GPU. Any dtype hug has
 * (f32, f64, bf16, f16, i32, u8). */
void comm_nccl_allreduce(const struct comm *c, void *buf, int64_t n, enum dtype dt,
			 enum comm_op op);

/* All-gather: every rank contributes n elements from `send`; `recv` (device
 * memory, size * n elements) receives them in rank order. In place when
 * send == recv + rank * n elements. */
void comm_nccl_allgather(const struct comm *c, const void *send, void *recv, int64_t n,
			 enum dtype dt);

/* Reduce-scatter (sum): `send` holds size * n elements; rank r receives the
 * sum over ranks of elements [r n, (r + 1) n) in `recv` (n elements). In
 * place when recv == send + rank * n elements. */
void comm_nccl_reduce_scatter(const struct comm *c, const void *send, void *recv,
			      int64_t n, enum dtype dt);

/* Broadcast of n elements at `buf` (device memory) from rank `root`. */
void comm_nccl_broadcast(const struct comm *c, void *buf, int64_t n, enum dtype dt,
			 int root);

/* Non-blocking in-place all-reduce (sum) of n elements at device memory
 * `buf` (comm_iallreduce's NCCL half): NCCL runs it on a side stream of
 * its own (non-blocking, created on first use) after an event marking the
 * work issued so far on the CUDA backend's stream (hug_cuda_stream), so it
 * overlaps the kernels issued after it. Returns at once with r active and
 * r->device set. Needs the CUDA backend initialised (hug_cuda_init). */
void comm_nccl_iallreduce(const struct comm *c, void *buf, int64_t n, enum dtype dt,
			  struct comm_request *r);

/* comm_ireduce_scatterv's and comm_iallgatherv's NCCL halves: one
 * ncclReduce (to rank r) or ncclBroadcast (from rank r) per rank with a
 * non-empty piece, in one NCCL group on the side stream of
 * comm_nccl_iallreduce, ordered after the backend's stream the same way.
 * Completed by comm_nccl_wait. */
void comm_nccl_ireduce_scatterv(const struct comm *c, const void *send, void *recv,
				const int *counts, const int *displs, enum dtype dt,
				struct comm_request *r);
void comm_nccl_iallgatherv(const struct comm *c, void *buf, const int *counts,
			   const int *displs, enum dtype dt, struct comm_request *r);

/* Completes r from comm_nccl_iallreduce (or the two above): waits on the host until the
 * collective has finished (watching NCCL's asynchronous errors, as the
 * blocking collectives do), orders the backend's stream after it and
 * releases r's event. */
void comm_nccl_wait(struct comm_request *r);

/* Finalises and destroys c->nccl (if any) and sets it to NULL. Collective
 * like comm_nccl_init: every rank of `c` calls it, after its last
 * collective. */
void comm_nccl_free(struct comm *c);

#ifdef __cplusplus
}
#endif

#endif /* HUG_CUDA && HUG_MPI */

#endif
