// The `trainer` config group as typed options (config/options.h), bound once and strictly: an
// unknown trainer.* key, a wrong type or a value out of range is one line naming the key, before
// anything runs. The group holds several parts' keys side by side (configs/trainer/default.yaml);
// each part owns its struct and its defaults, and TrainerOptions inlines them:
//   LoopOptions        the loop's cadence (trainer/loop_options.h)
//   NonFiniteOptions   trainer.on_nonfinite and the spike detector (trainer/nonfinite_guard.h)
//   RuntimeOptions     threads, device, determinism (below)
//   FinalSampleOptions the sample `attnlab train` prints at the end (below)
// and trainer.grades is GradES's nested group (trainer/grad_early_stop.h).
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <string>

#include "config/option_schema.h"
#include "trainer/grad_early_stop.h"
#include "trainer/loop_options.h"
#include "trainer/nonfinite_guard.h"

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

struct FinalSampleOptions {
  TORCH_ARG(int64_t, sample_tokens) = 0;
  TORCH_ARG(std::string, sample_prompt) = "\n";
  TORCH_ARG(double, sample_temperature) = 0.8;
  TORCH_ARG(int64_t, sample_top_k) = 40;

 public:
  template <class V>
  void visit(V& v) {
    v("sample_tokens", sample_tokens(),
      "tokens of the sample `attnlab train` prints at the end (0: none)", config::at_least(0));
    v("sample_prompt", sample_prompt(), "the sample's prompt");
    v("sample_temperature", sample_temperature(), "the sample's temperature (0: greedy)",
      config::at_least(0.0), config::finite());
    v("sample_top_k", sample_top_k(), "the sample's top-k filter (0: off)", config::at_least(0));
  }
};

struct TrainerOptions {
  TORCH_ARG(LoopOptions, loop);
  TORCH_ARG(NonFiniteOptions, nonfinite);
  TORCH_ARG(RuntimeOptions, runtime);
  TORCH_ARG(FinalSampleOptions, final_sample);
  TORCH_ARG(GradEarlyStopOptions, grades);

 public:
  template <class V>
  void visit(V& v) {
    v("", loop(), "");
    v("", nonfinite(), "");
    v("", runtime(), "");
    v("", final_sample(), "");
    v("grades", grades(), "GradES: freeze converged matrices");
  }

  // Binds the config's `trainer` group; UserError naming the key on a bad key or value. Defined
  // for YAML::Node.
  template <class ConfigTree>
  static TrainerOptions from_config(const ConfigTree& config);
};

}  // namespace attnlab
