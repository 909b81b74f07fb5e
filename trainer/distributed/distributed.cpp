// DistributedContext over MPI: launcher detection, MPI_Init_thread, broadcasts and reductions
// with a deadline, and job-wide abort. See distributed.h for the contract.
#include "trainer/distributed/distributed.h"

#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "common/config_access.h"
#include "common/error.h"
#include "trainer/distributed/mpi_types.h"

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

bool mpi_is_running() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

// CPU tensor sharing memory with `tensor` when it is a contiguous CPU tensor, else a CPU copy.
torch::Tensor host_view(const torch::Tensor& tensor) {
  if (tensor.device().is_cpu() && tensor.is_contiguous()) return tensor;
  return tensor.detach().to(torch::kCPU).contiguous();
}

}  // namespace

DistOptions dist_options_from_config(const YAML::Node& config) {
  DistOptions options;
  options.backend = cfg::get_or<std::string>(config, "dist.backend", options.backend);
  options.bucket_mb = cfg::get_or<double>(config, "dist.bucket_mb", options.bucket_mb);
  options.timeout_s = cfg::get_or<double>(config, "dist.timeout_s", options.timeout_s);
  check_user(
      options.backend == "mpi" || options.backend == "gloo" || options.backend == "nccl",
      "config key 'dist.backend': expected one of mpi, gloo, nccl, got '" + options.backend + "'");
  check_user(options.bucket_mb > 0,
             "config key 'dist.bucket_mb': expected a positive size in "
             "MiB, got " +
                 std::to_string(options.bucket_mb));
  check_user(options.timeout_s > 0,
             "config key 'dist.timeout_s': expected a positive number of "
             "seconds, got " +
                 std::to_string(options.timeout_s));
  return options;
}

bool launched_by_mpi_launcher() {
  // mpirun (Open MPI), MPICH/Hydra (PMI_SIZE), PMIx launchers, and an srun step with several
  // tasks. SLURM_STEP_NUM_TASKS rather than SLURM_NTASKS: the latter is also set in the batch
  // script itself, where a plain `attnlab train` is one process.
  return env_int("OMPI_COMM_WORLD_SIZE", 0) > 1 || env_int("PMI_SIZE", 0) > 1 ||
         std::getenv("PMIX_RANK") != nullptr || env_int("SLURM_STEP_NUM_TASKS", 0) > 1;
}

std::shared_ptr<DistributedContext> init_distributed(const YAML::Node& config) {
  auto context = std::make_shared<DistributedContext>();
  context->options_ = dist_options_from_config(config);
  const std::string& backend = context->options_.backend;
  if (backend == "nccl") {
    check_user(torch::cuda::is_available(),
               "dist.backend=nccl needs a CUDA build of LibTorch with NCCL and a GPU; this "
               "attnlab runs on a CPU LibTorch. Use dist.backend=mpi");
    // A CUDA build: the MPI reducer stages device buckets through host memory; a native NCCL
    // process group is not implemented.
    throw UserError(
        "dist.backend=nccl is not implemented yet; dist.backend=mpi works on CUDA "
        "builds too (gradients are staged through host memory)");
  }
  if (backend == "gloo") {
    // Debian's libtorch-dev ships c10d/ProcessGroupGloo.hpp and libtorch_cpu exports its
    // symbols, but that header includes <gloo/...> headers, which are not installed (they come
    // with libgloo-dev, not a dependency of this build), so the Gloo process group cannot be
    // compiled against here.
    throw UserError(
        "dist.backend=gloo is not available in this build: Debian's LibTorch 1.13 ships "
        "c10d/ProcessGroupGloo.hpp but not the gloo headers it includes. Use dist.backend=mpi "
        "(CPU) or dist.backend=nccl (CUDA builds)");
  }
  if (!launched_by_mpi_launcher()) return context;  // single process, MPI untouched

  if (!mpi_is_running()) {
    int provided = 0;
    // MULTIPLE lets autograd hooks on any thread start all-reduces; we work with less too.
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    context->owns_mpi_ = true;
    context->thread_multiple_ = provided == MPI_THREAD_MULTIPLE;
  } else {
    int provided = 0;
    MPI_Query_thread(&provided);
    context->thread_multiple_ = provided == MPI_THREAD_MULTIPLE;
  }
  // Errors inside MPI abort the job rather than returning codes nobody checks.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
  MPI_Comm_rank(MPI_COMM_WORLD, &context->rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &context->world_size_);
  const int step_tasks = env_int("SLURM_STEP_NUM_TASKS", 0);
  if (step_tasks > 1 && context->world_size_ != step_tasks) {
    // Each task initialised MPI alone: N independent copies would train into one run dir.
    context->abort("srun started " + std::to_string(step_tasks) + " tasks but MPI sees " +
                       std::to_string(context->world_size_) +
                       "; launch with `srun --mpi=pmix` (launcher.mpi) so the tasks form one job",
                   kUserErrorExitCode);
  }
  return context;
}

DistributedContext::~DistributedContext() {
  if (owns_mpi_ && mpi_is_running()) MPI_Finalize();
}

void DistributedContext::wait_or_abort(void* request_ptr, const std::string& what) {
  auto* request = static_cast<MPI_Request*>(request_ptr);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(options_.timeout_s);
  int done = 0;
  // Spin briefly (collectives usually finish in microseconds), then back off to spare the CPU.
  for (int spins = 0;; ++spins) {
    MPI_Test(request, &done, MPI_STATUS_IGNORE);
    if (done) return;
    if (std::chrono::steady_clock::now() > deadline) {
      abort(what + " did not complete within dist.timeout_s=" + std::to_string(options_.timeout_s) +
            " s; another rank probably failed, hangs, or is not running the same program");
    }
    if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

void DistributedContext::broadcast(torch::Tensor& tensor, int root) {
  if (!is_distributed()) return;
  torch::NoGradGuard no_grad;
  torch::Tensor host = host_view(tensor);
  MPI_Request request;
  MPI_Ibcast(host.data_ptr(), mpi_count(host.numel()), mpi_datatype(host.scalar_type()), root,
             MPI_COMM_WORLD, &request);
  wait_or_abort(&request, "broadcast");
  if (!host.is_same(tensor)) tensor.copy_(host);
}

void DistributedContext::broadcast_module(torch::nn::Module& module) {
  if (!is_distributed()) return;
  // Structure check first: ranks built from different configs would otherwise exchange garbage.
  auto params = module.named_parameters(/*recurse=*/true);
  auto buffers = module.named_buffers(/*recurse=*/true);
  double signature[2] = {static_cast<double>(params.size() + buffers.size()), 0.0};
  for (const auto& item : params) signature[1] += static_cast<double>(item.value().numel());
  for (const auto& item : buffers) signature[1] += static_cast<double>(item.value().numel());
  double low[2], high[2];
  MPI_Request requests[2];
  MPI_Iallreduce(signature, low, 2, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD, &requests[0]);
  wait_or_abort(&requests[0], "broadcast_module (structure check)");
  MPI_Iallreduce(signature, high, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD, &requests[1]);
  wait_or_abort(&requests[1], "broadcast_module (structure check)");
  if (low[0] != high[0] || low[1] != high[1]) {
    abort("broadcast_module: ranks hold different models (tensor counts " + std::to_string(low[0]) +
          ".." + std::to_string(high[0]) + ", element counts " + std::to_string(low[1]) + ".." +
          std::to_string(high[1]) + "); every rank must build the model from the same config");
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
  double result = 0.0;
  MPI_Request request;
  MPI_Iallreduce(&value, &result, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &request);
  wait_or_abort(&request, "allreduce");
  return result;
}

double DistributedContext::allreduce_mean(double value) {
  return allreduce_sum(value) / world_size_;
}

void DistributedContext::allreduce_sum_(torch::Tensor& tensor) {
  if (!is_distributed()) return;
  torch::NoGradGuard no_grad;
  torch::Tensor host = host_view(tensor);
  MPI_Request request;
  MPI_Iallreduce(MPI_IN_PLACE, host.data_ptr(), mpi_count(host.numel()),
                 mpi_datatype(host.scalar_type()), MPI_SUM, MPI_COMM_WORLD, &request);
  wait_or_abort(&request, "allreduce");
  if (!host.is_same(tensor)) tensor.copy_(host);
}

bool DistributedContext::allreduce_any(bool flag) {
  if (!is_distributed()) return flag;
  int local = flag ? 1 : 0, result = 0;
  MPI_Request request;
  MPI_Iallreduce(&local, &result, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &request);
  wait_or_abort(&request, "allreduce_any");
  return result != 0;
}

void DistributedContext::barrier() {
  if (!is_distributed()) return;
  MPI_Request request;
  MPI_Ibarrier(MPI_COMM_WORLD, &request);
  wait_or_abort(&request, "barrier");
}

void DistributedContext::abort(const std::string& message, int exit_code) {
  std::cerr << "error";
  if (is_distributed()) std::cerr << " (rank " << rank_ << "/" << world_size_ << ")";
  std::cerr << ": " << message << std::endl;
  if (mpi_is_running()) MPI_Abort(MPI_COMM_WORLD, exit_code);
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
