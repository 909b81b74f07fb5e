// CUDA runtime queries and settings; see cuda_device.h. The trainer's CUDA-only source file.
#include "device/cuda_device.h"

#include <ATen/Context.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAFunctions.h>

#include <cstdlib>

#include "common/error.h"

namespace attnlab {

namespace {

// -1 when unset or not a number.
int env_int(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return -1;
  char* end = nullptr;
  const long number = std::strtol(value, &end, 10);
  return (*end == '\0' && number >= 0 && number < (1L << 30)) ? static_cast<int>(number) : -1;
}

// SLURM_STEP_TASKS_PER_NODE is "4" or "4(x2),3": the first count is this node's when nodes are
// equal; uneven layouts give a lower bound that is still checked against the GPUs.
int slurm_tasks_per_node() {
  const char* value = std::getenv("SLURM_STEP_TASKS_PER_NODE");
  if (value == nullptr) value = std::getenv("SLURM_TASKS_PER_NODE");
  if (value == nullptr || *value == '\0') return -1;
  return std::atoi(value);
}

}  // namespace

LocalRank local_rank_from_env() {
  struct Source {
    const char* rank;
    const char* size;
  };
  const Source sources[] = {{"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"},
                            {"MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
                            {"SLURM_LOCALID", nullptr},
                            {"LOCAL_RANK", "LOCAL_WORLD_SIZE"}};
  for (const auto& source : sources) {
    const int rank = env_int(source.rank);
    if (rank < 0) continue;
    LocalRank local;
    local.rank = rank;
    local.size = source.size != nullptr ? env_int(source.size) : slurm_tasks_per_node();
    if (local.size < rank + 1) local.size = rank + 1;
    local.source = source.rank;
    return local;
  }
  return {};
}

torch::Device resolve_device(const std::string& name, int64_t visible_gpus,
                             const LocalRank& local) {
  if (name == "auto")
    return visible_gpus > 0 ? resolve_device("cuda", visible_gpus, local) : torch::Device("cpu");
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    throw UserError("trainer.device: '" + name +
                    "' is not a device (expected cpu, cuda, cuda:N or auto)");
  }
  check_user(device.is_cpu() || device.is_cuda(), "trainer.device: '" + name +
                                                      "' is not supported (expected cpu, cuda, "
                                                      "cuda:N or auto)");
  if (device.is_cpu()) return device;
  check_user(visible_gpus > 0, "trainer.device=" + name +
                                   ": no CUDA GPU is visible to this process (no GPU, no driver, "
                                   "or CUDA_VISIBLE_DEVICES hides them); use trainer.device=cpu "
                                   "or auto");
  if (device.has_index()) {
    check_user(device.index() < visible_gpus,
               "trainer.device=" + name + ": CUDA device index " + std::to_string(device.index()) +
                   " does not exist (" + std::to_string(visible_gpus) + " visible: cuda:0.." +
                   std::to_string(visible_gpus - 1) + ")");
    return device;
  }
  // One GPU per rank of this node, by local rank.
  check_user(local.size <= visible_gpus,
             "trainer.device=" + name + ": " + std::to_string(local.size) +
                 " ranks run on this node (" + local.source + ") but only " +
                 std::to_string(visible_gpus) +
                 " GPUs are visible; start at most one rank per GPU (e.g. "
                 "launcher.tasks_per_node=" +
                 std::to_string(visible_gpus) + ")");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local.rank));
}

int64_t cuda_device_count() {
  // c10's count never throws (0 without a driver); torch::cuda::is_available() also checks the
  // driver API can be loaded.
  return torch::cuda::is_available() ? static_cast<int64_t>(c10::cuda::device_count()) : 0;
}

CudaDeviceInfo cuda_device_info(int64_t index) {
  TORCH_CHECK(index >= 0 && index < cuda_device_count(), "cuda_device_info: no GPU ", index);
  const cudaDeviceProp* properties =
      at::cuda::getDeviceProperties(static_cast<c10::DeviceIndex>(index));
  CudaDeviceInfo info;
  info.name = properties->name;
  info.major = properties->major;
  info.minor = properties->minor;
  info.supports_bf16 = properties->major >= 8;
  info.total_memory_gib = static_cast<double>(properties->totalGlobalMem) / (1024.0 * 1024 * 1024);
  return info;
}

void use_device(const torch::Device& device) {
  if (!device.is_cuda()) return;
  c10::cuda::set_device(device.has_index() ? device.index() : 0);
}

void configure_determinism(bool deterministic) {
  auto& context = at::globalContext();
  context.setDeterministicAlgorithms(deterministic, /*warn_only=*/false);
  if (!deterministic) return;
  // cuBLAS reads this when it creates a handle (the first GEMM on each device/stream): set here,
  // before any model work, and never override the user's own choice.
  setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  context.setDeterministicCuDNN(true);
  context.setBenchmarkCuDNN(false);
  context.setAllowTF32CuBLAS(false);
  context.setAllowTF32CuDNN(false);
}

}  // namespace attnlab
