// The process's runtime settings in the `trainer` group (trainer.threads, trainer.device,
// trainer.deterministic), owned by the device layer: the trainer inlines them into its
// TrainerOptions, and the layers that only need the device (data-parallel setup, Slurm scripts)
// bind this part of the group with config::bind_part<RuntimeOptions>(trainer, "trainer").
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <string>

#include "config/option_schema.h"

namespace attnlab {

struct RuntimeOptions {
  TORCH_ARG(int64_t, threads) = 0;
  TORCH_ARG(std::string, device) = "cpu";
  TORCH_ARG(bool, deterministic) = false;

 public:
  template <class V>
  void visit(V& v) {
    v("threads", threads(), "intra-op threads (0: all cores)", config::at_least(0));
    v("device", device(),
      "cpu | cuda (under mpirun/srun: this rank's local GPU) | cuda:N | auto (cuda when a GPU "
      "is visible)");
    v("deterministic", deterministic(),
      "deterministic CUDA kernels, so resume is bitwise on GPUs too (the CPU path always is)");
  }
};

}  // namespace attnlab
