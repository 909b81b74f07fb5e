// DistributedContext: launcher detection, backend start-up, broadcasts and reductions with a
// deadline, and job-wide abort, over the backend of collectives.h. See distributed.h.
#include "distributed/distributed.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "common/config_access.h"
#include "common/error.h"
#include "config/options.h"
#include "device/cuda_device.h"
#include "device/runtime_options.h"
#include "distributed/collectives.h"

namespace attnlab {

namespace {

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  try {
    return std::stoi(value);
  } catch (const std::exception&) {
    return fallback;
  }
}

// `tensor` itself when it is contiguous and on the collectives' device (the CPU for mpi/gloo, the
// GPU for nccl), else a contiguous copy there.
torch::Tensor comm_view(const torch::Tensor& tensor, const torch::Device& device) {
  if (tensor.device() == device && tensor.is_contiguous()) return tensor;
  return tensor.detach().to(device).contiguous();
}

// All-reduces `tensor` (any device) through `comm`, on the collectives' device, in place.
void allreduce_in_place(DistributedContext& context, Collectives& comm, torch::Tensor& tensor,
                        ReduceOp op, const std::string& what) {
  torch::Tensor moved = comm_view(tensor, comm.device());
  context.wait_or_abort(*comm.allreduce(moved, op), what);
  if (!moved.is_same(tensor)) tensor.copy_(moved);
}

}  // namespace

template <class ConfigTree>
DistOptions dist_options_from_config(const ConfigTree& config) {
  return config::bind<DistOptions>(cfg::find(config, "dist"), "dist");
}

template DistOptions dist_options_from_config(const YAML::Node&);

bool launched_by_mpi_launcher() {
  // mpirun (Open MPI), MPICH/Hydra (PMI_SIZE), PMIx launchers, and an srun step with several
  // tasks. SLURM_STEP_NUM_TASKS rather than SLURM_NTASKS: the latter is also set in the batch
  // script itself, where a plain `attnlab train` is one process.
  return env_int("OMPI_COMM_WORLD_SIZE", 0) > 1 || env_int("PMI_SIZE", 0) > 1 ||
         std::getenv("PMIX_RANK") != nullptr || env_int("SLURM_STEP_NUM_TASKS", 0) > 1 ||
         env_int("WORLD_SIZE", 0) > 1;
}

LauncherRank launcher_rank_from_env() {
  // Most specific first: Open MPI's mpirun, MPICH/Hydra, an srun step, torchrun.
  const std::pair<const char*, const char*> sources[] = {
      {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
      {"PMI_RANK", "PMI_SIZE"},
      {"SLURM_PROCID", "SLURM_STEP_NUM_TASKS"},
      {"RANK", "WORLD_SIZE"}};
  for (const auto& [rank, size] : sources) {
    const int world = env_int(size, 0);
    if (world > 1) return {env_int(rank, 0), world};
  }
  return {};
}

namespace {

// A rank whose launcher (mpirun, srun's step daemon, torchrun) died is orphaned: the kernel
// re-parents it, so getppid() changes. The watchdog notices within 0.1 s and ends the rank at once,
// without a checkpoint or any other write (a checkpoint being written is left as a .tmp, which
// the next start removes), instead of training on alone and writing into the run directory.
void start_launcher_watchdog(int rank) {
  const pid_t launcher = getppid();
  std::thread([launcher, rank] {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (getppid() != launcher) {
        const std::string line = "error: rank " + std::to_string(rank) + ": the launcher (pid " +
                                 std::to_string(launcher) +
                                 ") died; stopping without writing anything\n";
        (void)!write(STDERR_FILENO, line.data(), line.size());
        _exit(1);
      }
    }
  }).detach();
}

}  // namespace

template <class ConfigTree>
std::shared_ptr<DistributedContext> init_distributed(const ConfigTree& config) {
  auto context = std::make_shared<DistributedContext>();
  context->options_ = dist_options_from_config(config);
  const std::string& backend = context->options_.backend;
  torch::Device nccl_device(torch::kCPU);
  if (backend == "nccl") {
    // Checked before anything starts, also for a single process: the job would fail later.
    const int64_t gpus = cuda_device_count();
    check_user(gpus > 0,
               "dist.backend=nccl: no CUDA GPU is visible to this process (NCCL reduces on GPUs); "
               "use dist.backend=gloo or mpi on CPUs");
    const std::string requested =
        config::bind_part<RuntimeOptions>(cfg::find(config, "trainer"), "trainer").device();
    nccl_device = resolve_device(requested, gpus, local_rank_from_env());
    use_device(nccl_device);
    check_user(
        nccl_device.is_cuda(),
        "dist.backend=nccl needs trainer.device=cuda (or auto), got trainer.device=" + requested);
  }
  if (!launched_by_mpi_launcher()) return context;  // single process, no backend

  // Rank and world size from OMPI_COMM_WORLD_*, PMI_*, SLURM_PROCID/SLURM_STEP_NUM_TASKS or
  // RANK/WORLD_SIZE; a launcher that started one task (e.g. a 1-task srun) is a single process.
  const LauncherRank launcher = launcher_rank_from_env();
  if (backend == "gloo" || backend == "nccl") {
    if (launcher.world_size <= 1) return context;
    context->comm_ = backend == "gloo"
                         ? make_gloo_collectives(context->options_, launcher)
                         : make_nccl_collectives(context->options_, launcher, nccl_device);
  } else {
    context->comm_ = make_mpi_collectives();
  }
  context->rank_ = context->comm_->rank();
  context->world_size_ = context->comm_->world_size();
  if (launcher.world_size > 1 && context->world_size_ != launcher.world_size) {
    // Each task initialised MPI alone: N independent copies would train into one run dir.
    context->abort("the launcher started " + std::to_string(launcher.world_size) +
                       " tasks but MPI sees " + std::to_string(context->world_size_) +
                       "; under srun use `--mpi=pmix` (launcher.mpi) so the tasks form one MPI "
                       "job, and under torchrun-style launchers use dist.backend=gloo",
                   kUserErrorExitCode);
  }
  // ATTNLAB_TEST_NO_WATCHDOG=1: off, to measure what the watchdog prevents (see README).
  if (context->world_size_ > 1 && !std::getenv("ATTNLAB_TEST_NO_WATCHDOG"))
    start_launcher_watchdog(context->rank_);
  return context;
}

template std::shared_ptr<DistributedContext> init_distributed(const YAML::Node&);

DistributedContext::DistributedContext() = default;
DistributedContext::~DistributedContext() = default;

bool DistributedContext::thread_multiple() const { return comm_ && comm_->any_thread(); }

void DistributedContext::wait_or_abort(PendingOp& op, const std::string& what) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(options_.timeout_s);
  // Keep polling for the first second: MPI moves a large all-reduce forward only inside MPI
  // calls, fragment by fragment, so sleeping between polls stretches an 8 MiB all-reduce
  // several-fold. yield() still hands the core to a runnable peer on an oversubscribed machine.
  // After a second (a slow or dead peer) poll every 50 us to spare the CPU.
  const auto patient = start + std::chrono::seconds(1);
  for (;;) {
    try {
      if (op.test()) return;
    } catch (const std::exception& error) {
      abort(what + " failed: " + error.what() + " (did another rank fail?)");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      abort(what + " did not complete within dist.timeout_s=" + std::to_string(options_.timeout_s) +
            " s; another rank probably failed, hangs, or is not running the same program");
    }
    if (std::chrono::steady_clock::now() < patient)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

void DistributedContext::broadcast(torch::Tensor& tensor, int root) {
  if (!is_distributed()) return;
  torch::NoGradGuard no_grad;
  torch::Tensor host = comm_view(tensor, comm_->device());
  wait_or_abort(*comm_->broadcast(host, root), "broadcast");
  if (!host.is_same(tensor)) tensor.copy_(host);
}

void DistributedContext::broadcast_module(torch::nn::Module& module) {
  if (!is_distributed()) return;
  // Structure check first: ranks built from different configs would otherwise exchange garbage.
  auto params = module.named_parameters(/*recurse=*/true);
  auto buffers = module.named_buffers(/*recurse=*/true);
  double count = static_cast<double>(params.size() + buffers.size()), elements = 0.0;
  for (const auto& item : params) elements += static_cast<double>(item.value().numel());
  for (const auto& item : buffers) elements += static_cast<double>(item.value().numel());
  // max(x) and -max(-x) = min(x) in one all-reduce.
  auto signature = torch::tensor({count, elements, -count, -elements}, torch::kFloat64);
  allreduce_in_place(*this, *comm_, signature, ReduceOp::kMax,
                     "broadcast_module (structure check)");
  const auto* s = signature.data_ptr<double>();
  if (s[0] != -s[2] || s[1] != -s[3]) {
    abort("broadcast_module: ranks hold different models (tensor counts " + std::to_string(-s[2]) +
          ".." + std::to_string(s[0]) + ", element counts " + std::to_string(-s[3]) + ".." +
          std::to_string(s[1]) + "); every rank must build the model from the same config");
  }
  for (auto& item : params) broadcast(item.value(), 0);
  for (auto& item : buffers) broadcast(item.value(), 0);
}

std::string DistributedContext::broadcast_string(const std::string& value, int root) {
  if (!is_distributed()) return value;
  auto length = torch::tensor({static_cast<int64_t>(value.size())}, torch::kInt64);
  broadcast(length, root);
  auto bytes = torch::zeros({length.item<int64_t>()}, torch::kUInt8);
  if (rank_ == root) std::memcpy(bytes.data_ptr(), value.data(), value.size());
  broadcast(bytes, root);
  return std::string(static_cast<const char*>(bytes.data_ptr()), bytes.numel());
}

double DistributedContext::allreduce_sum(double value) {
  if (!is_distributed()) return value;
  auto tensor = torch::tensor({value}, torch::kFloat64);
  allreduce_in_place(*this, *comm_, tensor, ReduceOp::kSum, "allreduce");
  return tensor.item<double>();
}

double DistributedContext::allreduce_mean(double value) {
  return allreduce_sum(value) / world_size_;
}

void DistributedContext::allreduce_sum_(torch::Tensor& tensor) {
  if (!is_distributed()) return;
  torch::NoGradGuard no_grad;
  allreduce_in_place(*this, *comm_, tensor, ReduceOp::kSum, "allreduce");
}

bool DistributedContext::allreduce_any(bool flag) {
  if (!is_distributed()) return flag;
  auto tensor = torch::tensor({flag ? 1 : 0}, torch::kInt32);
  allreduce_in_place(*this, *comm_, tensor, ReduceOp::kMax, "allreduce_any");
  return tensor.item<int>() != 0;
}

void DistributedContext::barrier() {
  if (!is_distributed()) return;
  wait_or_abort(*comm_->barrier(), "barrier");
}

void DistributedContext::abort(const std::string& message, int exit_code) {
  std::cerr << "error";
  if (is_distributed()) std::cerr << " (rank " << rank_ << "/" << world_size_ << ")";
  std::cerr << ": " << message << std::endl;
  if (comm_) comm_->abort(exit_code);
  std::exit(exit_code);
}

int run_guarded(DistributedContext& context, const std::function<int()>& body) {
  if (!context.is_distributed()) return body();
  try {
    return body();
  } catch (const UserError& error) {
    context.abort(error.what(), kUserErrorExitCode);
  } catch (const std::exception& error) {
    context.abort(error.what(), 1);
  }
}

}  // namespace attnlab
