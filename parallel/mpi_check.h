/* mpi_check.h: the check wrapper for MPI calls (hug built with MPI only).
 * A failing call is a tier-2 error: panic at the caller's file:line with
 * the rank, the call and MPI's own error string (under mpirun the panic
 * hook turns that into MPI_Abort). */
#ifndef HUG_PARALLEL_MPI_CHECK_H
#define HUG_PARALLEL_MPI_CHECK_H

#define MPI_CHECK(call) comm_mpi_check((call), #call, __FILE__, __LINE__)

/* Returns when rc is MPI_SUCCESS, else panics naming `what`. */
void comm_mpi_check(int rc, const char *what, const char *file, int line);

#endif
