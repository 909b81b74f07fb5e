// `dist.backend=gloo`: collectives.h on c10d::ProcessGroupGloo. Debian's libtorch_cpu is built
// with USE_C10D_GLOO and links libgloo.so.0; the gloo headers that ProcessGroupGloo.hpp includes
// come with libgloo-dev (same source version as libgloo0). Without them this file compiles to a
// clear UserError.
//
// Rank and world size come from the launcher's environment (mpirun, srun, torchrun), so MPI is
// not initialised at all. Rendezvous: a TCPStore on MASTER_ADDR:MASTER_PORT when MASTER_ADDR is
// set (several nodes), else a FileStore at `dist.store` or, by default, a file in /tmp named
// after the launcher's job id (one node).
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "common/error.h"
#include "trainer/distributed/collectives.h"
#include "trainer/distributed/distributed.h"

#if __has_include(<gloo/config.h>) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>)
#define ATTNLAB_HAVE_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace attnlab {

#ifdef ATTNLAB_HAVE_GLOO

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

class GlooOp : public PendingOp {
 public:
  explicit GlooOp(c10::intrusive_ptr<c10d::Work> work) : work_(std::move(work)) {}
  bool test() override {
    if (!work_->isCompleted()) return false;
    if (!work_->isSuccess()) {
      try {
        std::rethrow_exception(work_->exception());
      } catch (const std::exception& error) {
        throw std::runtime_error(std::string("gloo: ") + error.what());
      }
    }
    return true;
  }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
};

class GlooCollectives : public Collectives {
 public:
  GlooCollectives(const DistOptions& options, const LauncherRank& launcher)
      : rank_(launcher.rank), world_size_(launcher.world_size) {
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000));
    const std::string master = env_or("MASTER_ADDR", "");
    if (!master.empty()) {
      c10d::TCPStoreOptions store_options;
      store_options.port = static_cast<uint16_t>(std::stoi(env_or("MASTER_PORT", "29500")));
      store_options.isServer = rank_ == 0;
      store_options.numWorkers = world_size_;
      store_options.timeout = timeout;
      store_ = c10::make_intrusive<c10d::TCPStore>(master, store_options);
    } else {
      std::string path = options.store;
      if (path.empty()) {
        const std::string id = launch_id();
        check_user(!id.empty(),
                   "dist.backend=gloo: cannot name a rendezvous file (no mpirun/srun/torchrun job "
                   "id in the environment); set dist.store=<file on a shared filesystem> or "
                   "MASTER_ADDR/MASTER_PORT");
        path = (std::filesystem::temp_directory_path() / ("attnlab-gloo-" + id)).string();
      }
      store_ = c10::make_intrusive<c10d::FileStore>(path, world_size_);
      store_path_ = path;
    }
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
    // GLOO_SOCKET_IFNAME picks the network interface (as in PyTorch); one node uses loopback.
    const std::string interface = env_or("GLOO_SOCKET_IFNAME", "");
    if (!interface.empty())
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    else if (master.empty())
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    gloo_options->threads = 2;  // one for bucket all-reduces, one for everything else
    group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, rank_, world_size_, gloo_options);
  }

  std::string name() const override { return "gloo"; }
  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  bool any_thread() const override { return true; }  // ProcessGroupGloo queues from any thread

  std::unique_ptr<PendingOp> allreduce(torch::Tensor& tensor, ReduceOp op) override {
    std::vector<torch::Tensor> tensors = {tensor};
    c10d::AllreduceOptions options;
    options.reduceOp = op == ReduceOp::kSum ? c10d::ReduceOp::SUM : c10d::ReduceOp::MAX;
    return std::make_unique<GlooOp>(group_->allreduce(tensors, options));
  }
  std::unique_ptr<PendingOp> broadcast(torch::Tensor& tensor, int root) override {
    std::vector<torch::Tensor> tensors = {tensor};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    return std::make_unique<GlooOp>(group_->broadcast(tensors, options));
  }
  std::unique_ptr<PendingOp> barrier() override {
    return std::make_unique<GlooOp>(group_->barrier());
  }
  // No MPI to abort through: exiting non-zero makes mpirun/srun stop the other ranks, and their
  // pending gloo operations fail as soon as this rank's connections close.
  // The FileStore removes its file when the last rank closes it; an aborted job leaves it behind.
  [[noreturn]] void abort(int exit_code) override {
    std::cerr.flush();
    std::error_code ignored;
    if (!store_path_.empty()) std::filesystem::remove(store_path_, ignored);
    std::_Exit(exit_code);
  }

 private:
  int rank_ = 0;
  int world_size_ = 1;
  c10::intrusive_ptr<c10d::Store> store_;
  std::string store_path_;  // the FileStore's file ("" with a TCPStore)
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

}  // namespace

std::unique_ptr<Collectives> make_gloo_collectives(const DistOptions& options,
                                                   const LauncherRank& rank) {
  return std::make_unique<GlooCollectives>(options, rank);
}

#else  // no gloo headers

std::unique_ptr<Collectives> make_gloo_collectives(const DistOptions&, const LauncherRank&) {
  throw UserError(
      "dist.backend=gloo: this attnlab was built without the gloo headers that LibTorch's "
      "c10d/ProcessGroupGloo.hpp includes; install libgloo-dev (Debian) and rebuild, or use "
      "dist.backend=mpi");
}

#endif

}  // namespace attnlab
