// Data-parallel process group for the trainer (`dist.*` config group, GitHub issue #7).
// `mpirun -np N attnlab train ...` or `srun ... attnlab train ...` starts N copies; the backend
// (`dist.backend`: mpi, or gloo through LibTorch's c10d, see collectives.h) supplies rank and
// world size. Without a launcher (no OMPI_/PMI_/PMIX_/SLURM_STEP_NUM_TASKS>1/WORLD_SIZE>1 env) the
// context is a single process and no backend is started, so plain runs need no MPI runtime.
//
// Every collective here is non-blocking and polled against `dist.timeout_s`: a rank that died or
// hangs turns into a job-wide abort with a message naming the collective instead of a silent
// hang.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "config/option_schema.h"

namespace attnlab {

// dist.* (configs/dist/mpi.yaml holds the same defaults; a test keeps them equal). Plain public
// fields rather than TORCH_ARG ones: the trainer reads options().bucket_mb, and config::bind only
// needs the visit list.
struct DistOptions {
  std::string backend = "mpi";
  double bucket_mb = 25.0;
  double timeout_s = 600.0;
  std::optional<std::string> store;

  template <class V>
  void visit(V& v) {
    v("backend", backend,
      "collectives: mpi, gloo (c10d ProcessGroupGloo) or nccl (CUDA builds, one GPU per rank)",
      config::one_of({"mpi", "gloo", "nccl"}));
    v("bucket_mb", bucket_mb,
      "gradient bucket size in MiB; all-reduces start as buckets fill during backward",
      config::greater_than(0.0), config::finite());
    v("timeout_s", timeout_s, "a collective waiting longer aborts the whole job with a message",
      config::greater_than(0.0), config::finite());
    v("store", store,
      "gloo/nccl rendezvous file; null: /tmp, named after the launch (several nodes: set "
      "MASTER_ADDR/MASTER_PORT for a TCP store instead)");
  }
};

// Binds the dist group (config/options.h); UserError naming the dotted key for an unknown key, a
// wrong type or a bad value. Without the group: the defaults. Defined for YAML::Node.
template <class ConfigTree>
DistOptions dist_options_from_config(const ConfigTree& config);

// True when this process was started by mpirun/srun/torchrun with more than one task.
bool launched_by_mpi_launcher();

class Collectives;
class PendingOp;

class DistributedContext {
 public:
  // Single-process context (rank 0 of 1); all collectives are no-ops.
  DistributedContext();
  ~DistributedContext();
  DistributedContext(const DistributedContext&) = delete;
  DistributedContext& operator=(const DistributedContext&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  bool is_main() const { return rank_ == 0; }
  bool is_distributed() const { return world_size_ > 1; }
  const DistOptions& options() const { return options_; }
  // True when collectives may be issued from any thread (autograd hooks): MPI granted
  // MPI_THREAD_MULTIPLE, or the backend is gloo.
  bool thread_multiple() const;
  // The backend (nullptr in a single-process context); GradientReducer issues its buckets here.
  Collectives* collectives() const { return comm_.get(); }

  // Copies rank 0's parameters and buffers into every rank's `module` (in place, no autograd).
  // Aborts with a clear message when the ranks' modules differ in structure.
  void broadcast_module(torch::nn::Module& module);
  // Broadcasts one tensor from `root` in place (CPU or device tensor; float/double/int/bool...).
  void broadcast(torch::Tensor& tensor, int root = 0);
  // Rank 0's string on every rank (e.g. the run dir, which may contain a timestamp).
  std::string broadcast_string(const std::string& value, int root = 0);
  // Mean of a scalar over ranks (validation loss, metrics).
  double allreduce_mean(double value);
  double allreduce_sum(double value);
  // Elementwise sum over ranks, in place.
  void allreduce_sum_(torch::Tensor& tensor);
  // True on every rank when `flag` is true on any rank (e.g. a pre-emption signal seen by one).
  bool allreduce_any(bool flag);
  void barrier();
  // Runs `load` on rank 0 first and on the other ranks once it has finished (one barrier), so
  // ranks never race on a cache that `load` fills (corpora, token shards, tokenizers); returns
  // `load`'s result on every rank. Rank 0 runs it once.
  template <typename Load>
  auto rank_zero_first(Load&& load) {
    if (!is_main()) barrier();
    auto result = load();
    if (is_main()) barrier();
    return result;
  }

  // Prints `message` prefixed with the rank and terminates every rank (MPI_Abort, or exit for
  // gloo); a plain single-process context exits the process with `exit_code`.
  [[noreturn]] void abort(const std::string& message, int exit_code = 1);

  // Waits for a collective, polling until dist.timeout_s has passed, then aborts naming `what`;
  // a failed collective aborts too. Public so GradientReducer shares the policy.
  void wait_or_abort(PendingOp& op, const std::string& what);

 private:
  template <class ConfigTree>
  friend std::shared_ptr<DistributedContext> init_distributed(const ConfigTree& config);
  int rank_ = 0;
  int world_size_ = 1;
  DistOptions options_;
  std::unique_ptr<Collectives> comm_;
};

// Creates the process group described by `config` (`dist.*`). Starts the backend only when
// launched by mpirun/srun/torchrun; nccl needs a visible GPU and trainer.device=cuda
// One context per process: MPI can be initialised only once. Defined for YAML::Node.
template <class ConfigTree>
std::shared_ptr<DistributedContext> init_distributed(const ConfigTree& config);

// Runs `body`; an exception on any rank of a multi-rank job prints its message and aborts the
// whole job (other ranks would otherwise wait forever in the next collective). Single-process
// runs rethrow, so the CLI's usual UserError handling (exit 2) applies.
int run_guarded(DistributedContext& context, const std::function<int()>& body);

}  // namespace attnlab
