// trainer.threads reaches both thread pools a training step uses: LibTorch's intra-op (OpenMP)
// pool and the BLAS that LibTorch's CPU library carries (MKL in the PyPI build), whose GEMMs
// otherwise pick their own thread count, so 2 MPI ranks with trainer.threads=1 would run two BLAS
// threads each and results would depend on it.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "trainer/run_setup.h"

extern "C" int mkl_get_max_threads();  // exported by libtorch_cpu (its bundled MKL)

using namespace attnlab;

TEST(ThreadSettings, TrainerThreadsSetsLibTorchAndBlas) {
  for (int threads : {1, 2}) {
    YAML::Node config;
    config["trainer"]["threads"] = threads;
    EXPECT_EQ(configure_threads(config), threads);
    EXPECT_EQ(torch::get_num_threads(), threads);
    EXPECT_EQ(mkl_get_max_threads(), threads);
  }
}
