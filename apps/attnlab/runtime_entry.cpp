// libattnlab_runtime.so's entry points, called by the `attnlab` front end (apps/attnlab/main.cpp)
// after it dlopens this library: parse the command line again and run the command from the
// command table inside the error boundary (cli/error_boundary.h), which turns every error
// into one line and an exit code (2 for bad input, 1 otherwise) and writes the full report to the
// run directory's error.log.
#include <torch/torch.h>

#include <cstdlib>
#include <iostream>

#include "cli/command.h"
#include "cli/error_boundary.h"
#include "device/cuda_device.h"

#ifndef ATTNLAB_TORCH_CUDA_BUILD
#define ATTNLAB_TORCH_CUDA_BUILD 0
#endif

namespace {

void print_versions() {
  std::cout << "attnlab " << ATTNLAB_VERSION << "\n"
            << "LibTorch " << TORCH_VERSION << " ("
            << (ATTNLAB_TORCH_CUDA_BUILD ? "CUDA build, CUDA " ATTNLAB_CUDA_VERSION : "CPU build")
            << ")\n";
  const int64_t gpus = attnlab::cuda_device_count();
  std::cout << "CUDA available: " << (gpus > 0 ? "yes" : "no");
  if (gpus > 0) std::cout << " (" << gpus << " devices)";
  std::cout << "\n";
  for (int64_t i = 0; i < gpus; ++i) {
    const attnlab::CudaDeviceInfo info = attnlab::cuda_device_info(i);
    std::cout << "  cuda:" << i << " " << info.name << ", compute capability " << info.major << "."
              << info.minor << ", " << static_cast<int64_t>(info.total_memory_gib + 0.5) << " GiB"
              << (info.supports_bf16 ? ", bf16" : ", no bf16") << "\n";
  }
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  std::cout << "OpenMP: " << torch::get_num_threads()
            << " threads, OMP_WAIT_POLICY=" << (policy ? policy : "(unset)");
  if (spin) std::cout << ", GOMP_SPINCOUNT=" << spin;
  std::cout << "\n";
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int attnlab_runtime_main(int argc, char** argv) {
  return attnlab::run_with_error_boundary(
      [&] {
        attnlab::CommandLine line = attnlab::parse_command_line(argc, argv);
        if (line.version) {
          print_versions();
          return 0;
        }
        return attnlab::command_registry().get(line.command).run(line.args);
      },
      argc, argv);
}
