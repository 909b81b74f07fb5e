// trainer.threads reaches both thread pools a training step uses: LibTorch's intra-op pool and
// OpenBLAS's own (Debian's libopenblas0-pthread), which LibTorch does not configure itself.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "trainer/run_setup.h"

using namespace attnlab;

TEST(ThreadSettings, TrainerThreadsSetsLibTorchAndOpenBlas) {
  using GetThreads = int (*)();
  auto blas_threads =
      reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  for (int threads : {1, 2}) {
    YAML::Node config;
    config["trainer"]["threads"] = threads;
    EXPECT_EQ(configure_threads(config), threads);
    EXPECT_EQ(torch::get_num_threads(), threads);
    // Built against another BLAS there is no OpenBLAS pool to configure.
    if (blas_threads != nullptr) EXPECT_EQ(blas_threads(), threads);
  }
  EXPECT_NE(blas_threads, nullptr) << "this build's BLAS is not OpenBLAS (see scripts/setup.sh)";
}
