/* Fault injection for the data-parallel tests: an MPI_Iallreduce that reduces nothing (each rank
   keeps its own values) and completes at once, so every rank trains on its own shard alone.
     mpicc -shared -fPIC -o /tmp/noallreduce.so bench/noallreduce.c
     LD_PRELOAD=/tmp/noallreduce.so .build/debug/MedSynthPackageTests.xctest \
         --testing-library swift-testing --filter DataParallelTests
   Every comparison with one process must then fail (README, "Data-parallel training"). */
#include <mpi.h>

int MPI_Iallreduce(const void *send, void *recv, int count, MPI_Datatype type, MPI_Op op, MPI_Comm comm,
                   MPI_Request *request) {
    (void)send; (void)recv; (void)count; (void)type; (void)op; (void)comm;
    *request = MPI_REQUEST_NULL;  /* MPI_Test on a null request reports it complete */
    return MPI_SUCCESS;
}
