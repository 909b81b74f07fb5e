// The c10d backends' shared collectives and the rendezvous store; see c10d_collectives.h and
// collectives.h. Rank and world size come from the launcher (mpirun, srun, torchrun). The store is
// a TCPStore on MASTER_ADDR:MASTER_PORT when MASTER_ADDR is set (several nodes), else a FileStore
// at `dist.store` or, by default, a file in /tmp named after the launcher's job id (one node).
#include "distributed/c10d_collectives.h"

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "common/error.h"
#include "distributed/distributed.h"

namespace attnlab {

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return (value != nullptr && *value != '\0') ? value : fallback;
}

// An id shared by the ranks of one launch and different between launches: the FileStore's name.
std::string launch_id() {
  for (const char* name : {"OMPI_MCA_ess_base_jobid", "OMPI_MCA_orte_ess_jobid", "PMIX_NAMESPACE",
                           "TORCHELASTIC_RUN_ID"}) {
    const std::string value = env_or(name, "");
    if (!value.empty()) return value;
  }
  const std::string job = env_or("SLURM_JOB_ID", "");
  if (!job.empty()) return job + "." + env_or("SLURM_STEP_ID", "0");
  return "";
}

}  // namespace

c10::intrusive_ptr<c10d::Store> make_rendezvous_store(const DistOptions& options,
                                                      const LauncherRank& rank,
                                                      const std::string& backend,
                                                      std::string* store_path) {
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000));
  const std::string master = env_or("MASTER_ADDR", "");
  if (store_path != nullptr) store_path->clear();
  if (!master.empty()) {
    c10d::TCPStoreOptions store_options;
    const std::string port = env_or("MASTER_PORT", "29500");
    try {
      store_options.port = static_cast<uint16_t>(std::stoi(port));
    } catch (const std::exception&) {
      throw UserError("MASTER_PORT='" + port + "': expected a port number");
    }
    store_options.isServer = rank.rank == 0;
    store_options.numWorkers = rank.world_size;
    store_options.timeout = timeout;
    return c10::make_intrusive<c10d::TCPStore>(master, store_options);
  }
  std::string path = options.store.value_or("");  // null or "": a file in /tmp
  if (path.empty()) {
    const std::string id = launch_id();
    check_user(!id.empty(), "dist.backend=" + backend +
                                ": cannot name a rendezvous file (no mpirun/srun/torchrun job id "
                                "in the environment); set dist.store=<file on a shared "
                                "filesystem> or MASTER_ADDR/MASTER_PORT");
    path = (std::filesystem::temp_directory_path() / ("attnlab-" + backend + "-" + id)).string();
  }
  if (store_path != nullptr) *store_path = path;
  return c10::make_intrusive<c10d::FileStore>(path, rank.world_size);
}

C10dOp::C10dOp(c10::intrusive_ptr<c10d::Work> work, std::string backend)
    : work_(std::move(work)), backend_(std::move(backend)) {}

bool C10dOp::test() {
  if (!work_->isCompleted()) return false;
  try {
    if (!work_->isSuccess()) std::rethrow_exception(work_->exception());
    work_->wait();
  } catch (const std::exception& error) {
    throw std::runtime_error(backend_ + ": " + error.what());
  }
  return true;
}

C10dCollectives::C10dCollectives(const std::string& name, const DistOptions& options,
                                 const LauncherRank& rank, torch::Device device)
    : name_(name), rank_(rank.rank), world_size_(rank.world_size), device_(device) {
  store_ = make_rendezvous_store(options, rank, name, &store_path_);
}

std::unique_ptr<PendingOp> C10dCollectives::allreduce(torch::Tensor& tensor, ReduceOp op) {
  std::vector<torch::Tensor> tensors = {tensor};
  c10d::AllreduceOptions options;
  options.reduceOp = op == ReduceOp::kSum ? c10d::ReduceOp::SUM : c10d::ReduceOp::MAX;
  return std::make_unique<C10dOp>(group_->allreduce(tensors, options), name_);
}

std::unique_ptr<PendingOp> C10dCollectives::broadcast(torch::Tensor& tensor, int root) {
  std::vector<torch::Tensor> tensors = {tensor};
  c10d::BroadcastOptions options;
  options.rootRank = root;
  return std::make_unique<C10dOp>(group_->broadcast(tensors, options), name_);
}

std::unique_ptr<PendingOp> C10dCollectives::barrier() {
  c10d::BarrierOptions options;
  if (device_.is_cuda()) options.device_ids = {device_.index()};
  return std::make_unique<C10dOp>(group_->barrier(options), name_);
}

void C10dCollectives::abort(int exit_code) {
  std::cerr.flush();
  std::error_code ignored;
  if (!store_path_.empty()) std::filesystem::remove(store_path_, ignored);
  std::_Exit(exit_code);
}

}  // namespace attnlab
