// GradES (Wen et al. 2025, "Significantly Faster Training in Transformers with Gradient-Based
// Early Stopping"): each weight matrix of the blocks stops being updated, on its own, once its
// gradient has converged, instead of the whole model stopping on validation loss.
//   * Monitored: parameters matching `trainer.grades.params` (default the blocks' 2-D weights:
//     attention projections and MLP matrices) that are trainable (not frozen by `freeze=`).
//   * Metric per matrix and step: the mean absolute gradient, ||G||_1 / numel (the paper tracks
//     the element-wise L1 norm; dividing by the size makes one tau serve matrices of any shape),
//     taken after the data-parallel all-reduce, so every rank decides the same.
//   * A matrix freezes once the metric was below `tau` for `patience` consecutive steps after the
//     grace period (the first grace_fraction x trainer.max_steps steps, when gradients are still
//     large and noisy). Frozen matrices keep their values and their AdamW moments; from then on
//     their gradient is dropped before clipping and the optimizer step, so AdamW skips them
//     (no update, no weight decay). In a single process they also stop requiring a gradient,
//     so backward skips their weight-gradient matmuls; under data parallelism backward still
//     computes them, because the gradient buckets wait for every parameter they hold.
//   * The frozen set and the below-tau counters are checkpointed (TrainState::extra), so a
//     resumed run freezes exactly as an uninterrupted one.
#pragma once

#include <torch/arg.h>
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "config/option_schema.h"

namespace attnlab {

// trainer.grades (configs/trainer/default.yaml holds the same defaults; a test keeps them equal).
struct GradEarlyStopOptions {
  TORCH_ARG(bool, enabled) = false;
  TORCH_ARG(double, tau) = 1e-5;
  TORCH_ARG(double, grace_fraction) = 0.5;
  TORCH_ARG(int64_t, patience) = 3;
  TORCH_ARG(std::vector<std::string>, params) = std::vector<std::string>{"blocks.*.weight"};

 public:
  template <class V>
  void visit(V& v) {
    v("enabled", enabled(), "freeze block matrices whose gradient has converged");
    v("tau", tau(), "a matrix converges once its mean |grad| stays below tau",
      config::at_least(0.0), config::finite());
    v("grace_fraction", grace_fraction(),
      "no freezing during the first grace_fraction x trainer.max_steps steps",
      config::in_range(0.0, 1.0));
    v("patience", patience(), "consecutive steps below tau before a matrix freezes",
      config::at_least(1));
    v("params", params(), "globs of the monitored parameters (their 2-D trainable matrices)",
      config::non_empty());
  }

  // Binds trainer.grades (config/options.h); UserError naming the key for a bad key or value.
  // Defined for YAML::Node.
  template <class ConfigTree>
  static GradEarlyStopOptions from_config(const ConfigTree& config);
};

class GradEarlyStop {
 public:
  // `model_params`: the model's named parameters; those matching the globs, 2-D and trainable
  // are monitored (UserError when enabled and none is).
  // `skip_backward`: frozen matrices stop requiring a gradient (single process only).
  GradEarlyStop(const GradEarlyStopOptions& options,
                const std::vector<std::pair<std::string, torch::Tensor>>& model_params,
                int64_t max_steps, bool skip_backward = false);

  bool enabled() const { return options_.enabled(); }
  // After backward (and the all-reduce) of update `step` (1-based): updates the counters,
  // freezes what converged, and drops the gradients of every frozen matrix. Returns the names
  // frozen at this step.
  std::vector<std::string> observe(int64_t step);

  size_t frozen_count() const { return frozen_.size(); }
  const std::map<std::string, int64_t>& frozen() const { return frozen_; }  // name -> step
  size_t monitored_count() const { return monitored_.size(); }

  // Checkpoint state (TrainState::extra keys grades.frozen / grades.below).
  void save(std::map<std::string, std::string>& extra) const;
  void load(const std::map<std::string, std::string>& extra);

 private:
  GradEarlyStopOptions options_;
  void freeze(torch::Tensor& param);

  int64_t grace_steps_ = 0;
  bool skip_backward_ = false;
  std::vector<std::pair<std::string, torch::Tensor>> monitored_;
  std::map<std::string, int64_t> below_;  // consecutive steps below tau
  std::map<std::string, int64_t> frozen_;
};

}  // namespace attnlab
