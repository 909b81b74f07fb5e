// The communication backend behind DistributedContext and GradientReducer (`dist.backend`):
// a handful of non-blocking collectives on contiguous CPU tensors. `mpi` issues MPI_I* calls
// (mpi_collectives.cpp); `gloo` drives c10d::ProcessGroupGloo from LibTorch, with rank and world
// size from the launcher's environment and a FileStore/TCPStore rendezvous
// (gloo_collectives.cpp). Callers poll PendingOp::test() against dist.timeout_s, so a dead or
// hung rank becomes an abort with a message on either backend.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

namespace attnlab {

struct DistOptions;

// One collective in flight. test() never blocks; it throws std::runtime_error when the
// collective failed (e.g. a peer closed its connection).
class PendingOp {
 public:
  virtual ~PendingOp() = default;
  virtual bool test() = 0;
};

enum class ReduceOp { kSum, kMax };

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual std::string name() const = 0;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // True when collectives may be started from any thread (e.g. autograd hooks).
  virtual bool any_thread() const = 0;
  // The device whose tensors the collectives take: the CPU for mpi and gloo, this rank's GPU for
  // nccl (buckets then stay on the GPU).
  virtual torch::Device device() const { return torch::Device(torch::kCPU); }
  // In place, over all ranks. `tensor` must be a contiguous tensor on device() that stays alive
  // (and untouched) until the returned op has completed.
  virtual std::unique_ptr<PendingOp> allreduce(torch::Tensor& tensor, ReduceOp op) = 0;
  virtual std::unique_ptr<PendingOp> broadcast(torch::Tensor& tensor, int root) = 0;
  virtual std::unique_ptr<PendingOp> barrier() = 0;
  // Terminates every rank of the job (the message is printed by the caller).
  [[noreturn]] virtual void abort(int exit_code) = 0;
};

// Rank and world size as the launcher (mpirun, MPICH/Hydra, srun, torchrun) exported them;
// world_size 1 when no launcher started several tasks.
struct LauncherRank {
  int rank = 0;
  int world_size = 1;
};
LauncherRank launcher_rank_from_env();

// MPI_Init_thread (when not yet initialised) over MPI_COMM_WORLD.
std::unique_ptr<Collectives> make_mpi_collectives();
// ProcessGroupGloo for this launcher rank; UserError when this build has no gloo.
std::unique_ptr<Collectives> make_gloo_collectives(const DistOptions& options,
                                                   const LauncherRank& rank);
// ProcessGroupNCCL for this launcher rank on `device` (a GPU); UserError when this build has no
// NCCL (nccl_collectives.cpp).
std::unique_ptr<Collectives> make_nccl_collectives(const DistOptions& options,
                                                   const LauncherRank& rank,
                                                   const torch::Device& device);

}  // namespace attnlab
