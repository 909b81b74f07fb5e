// libattnlab_runtime.so's entry points, called by the `attnlab` front end (apps/attnlab/main.cpp)
// after it dlopens this library: parse the command line again and run the command from the
// command table inside the error boundary (trainer/cli/error_boundary.h), which turns every error
// into one line and an exit code (2 for bad input, 1 otherwise) and writes the full report to the
// run directory's error.log.
#include <torch/torch.h>

#include <cstdlib>
#include <iostream>

#include "trainer/cli/command.h"
#include "trainer/cli/error_boundary.h"

#ifndef ATTNLAB_TORCH_CUDA_BUILD
#define ATTNLAB_TORCH_CUDA_BUILD 0
#endif

namespace {

void print_versions() {
  std::cout << "attnlab " << ATTNLAB_VERSION << "\n"
            << "LibTorch " << TORCH_VERSION << " ("
            << (ATTNLAB_TORCH_CUDA_BUILD ? "CUDA build, CUDA " ATTNLAB_CUDA_VERSION : "CPU build")
            << ")\n";
  const bool cuda = torch::cuda::is_available();
  std::cout << "CUDA available: " << (cuda ? "yes" : "no");
  if (cuda) std::cout << " (" << torch::cuda::device_count() << " devices)";
  std::cout << "\n";
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
