// collectives.h on a LibTorch c10d backend (ProcessGroupGloo or ProcessGroupNCCL): the
// collectives, the pending-op polling and the abort are the same for both, so they live here once;
// gloo_collectives.cpp and nccl_collectives.cpp only build their process group over the
// rendezvous store made here.
#pragma once

#include <memory>
#include <string>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include "distributed/collectives.h"

namespace attnlab {

// A collective in flight on a c10d backend. test() never blocks: it polls isCompleted() (for NCCL
// a query of the collective's CUDA event), then rethrows a failure, then wait()s, which for a
// finished collective returns at once (NCCL: makes the caller's stream wait for NCCL's stream).
class C10dOp : public PendingOp {
 public:
  C10dOp(c10::intrusive_ptr<c10d::Work> work, std::string backend);
  bool test() override;

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  std::string backend_;
};

class C10dCollectives : public Collectives {
 public:
  // Meets the other ranks through make_rendezvous_store; the derived constructor then creates
  // group_ over store_.
  C10dCollectives(const std::string& name, const DistOptions& options, const LauncherRank& rank,
                  torch::Device device);

  std::string name() const override { return name_; }
  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  // Both backends queue work from any thread (autograd hooks launch gradient buckets).
  bool any_thread() const override { return true; }
  torch::Device device() const override { return device_; }

  std::unique_ptr<PendingOp> allreduce(torch::Tensor& tensor, ReduceOp op) override;
  std::unique_ptr<PendingOp> broadcast(torch::Tensor& tensor, int root) override;
  std::unique_ptr<PendingOp> barrier() override;
  // No MPI to abort through: exiting non-zero makes mpirun/srun stop the other ranks, and their
  // pending operations fail as soon as this rank's connections close. A FileStore removes its
  // file when the last rank closes it; an aborted job's file is removed here.
  [[noreturn]] void abort(int exit_code) override;

 protected:
  // Set by the derived constructor once the process group exists.
  c10::intrusive_ptr<c10d::Backend> group_;
  c10::intrusive_ptr<c10d::Store> store_;

 private:
  std::string name_;
  int rank_ = 0;
  int world_size_ = 1;
  torch::Device device_;
  std::string store_path_;  // the FileStore's file, removed on abort ("" for a TCPStore)
};

// The rendezvous store of gloo and nccl: a TCPStore on MASTER_ADDR:MASTER_PORT when MASTER_ADDR
// is set (several nodes), else a FileStore at dist.store or, by default, a file in /tmp named
// after the launcher's job id (one node). `store_path` receives the FileStore's file ("" for a
// TCPStore).
c10::intrusive_ptr<c10d::Store> make_rendezvous_store(const DistOptions& options,
                                                      const LauncherRank& rank,
                                                      const std::string& backend,
                                                      std::string* store_path);

}  // namespace attnlab
