// The `trainer` config group as typed options (config/options.h), bound once and strictly: an
// unknown trainer.* key, a wrong type or a value out of range is one line naming the key, before
// anything runs. The group holds several parts' keys side by side (configs/trainer/default.yaml);
// each part owns its struct and its defaults, and TrainerOptions inlines them:
//   LoopOptions        the loop's cadence (trainer/loop_options.h)
//   NonFiniteOptions   trainer.on_nonfinite and the spike detector (trainer/nonfinite_guard.h)
//   RuntimeOptions     threads, device, determinism (device/runtime_options.h)
//   FinalSampleOptions trainer.sample: the sample `attnlab train` prints at the end (below)
// and trainer.grades is GradES's nested group (trainer/grad_early_stop.h).
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <string>

#include "config/option_schema.h"
#include "device/runtime_options.h"
#include "trainer/grad_early_stop.h"
#include "trainer/loop_options.h"
#include "trainer/nonfinite_guard.h"

namespace attnlab {

// trainer.sample: the sample `attnlab train` prints at the end of an LM run, with the names and
// meanings of `attnlab sample`'s options.
struct FinalSampleOptions {
  TORCH_ARG(int64_t, max_new_tokens) = 0;
  TORCH_ARG(std::string, prompt) = "\n";
  TORCH_ARG(double, temperature) = 0.8;
  TORCH_ARG(int64_t, top_k) = 40;

 public:
  template <class V>
  void visit(V& v) {
    v("max_new_tokens", max_new_tokens(), "tokens to generate (0: no sample)",
      config::at_least(0));
    v("prompt", prompt(), "text the sample continues");
    v("temperature", temperature(), "softmax temperature (0: greedy)", config::at_least(0.0),
      config::finite());
    v("top_k", top_k(), "sample among the k most likely tokens (0: all)", config::at_least(0));
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
    v("sample", final_sample(), "the sample printed after training");
    v("grades", grades(), "GradES: freeze converged matrices");
  }

  // Binds the config's `trainer` group; UserError naming the key on a bad key or value. Defined
  // for YAML::Node.
  template <class ConfigTree>
  static TrainerOptions from_config(const ConfigTree& config);
};

}  // namespace attnlab
