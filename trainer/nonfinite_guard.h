// The non-finite guard and spike detector of the training loop (`trainer.on_nonfinite`,
// `trainer.spike_*`). A diverged step (a NaN/Inf loss term, gradient norm, updated parameter or
// optimizer moment) must never reach a checkpoint, and the user must learn which step, which
// term or tensor, and which checkpoint is the last good one. This file holds the pieces that do
// not depend on the loop: the typed options, the finiteness scans that name the first bad tensor,
// and a z-score spike detector over a window of recent values (like llm.c's outlier detector).
#pragma once

#include <torch/arg.h>
#include <torch/torch.h>

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "config/option_schema.h"
#include "modules/state_dict.h"

namespace attnlab {

// What a step with a non-finite loss, gradient norm or update does.
enum class NonFinitePolicy {
  kHalt,      // stop with an error naming the step, the term/tensor and the last good checkpoint
  kSkip,      // drop the batch (no update, the step counter does not advance); counted in metrics
  kRollback,  // reload the last good checkpoint, skip the data since, lower the LR by a factor
};

// trainer.on_nonfinite and the spike detector's keys (bound with the `trainer` group by
// TrainerOptions, trainer/trainer_options.h).
struct NonFiniteOptions {
  TORCH_ARG(std::string, on_nonfinite) = "halt";
  TORCH_ARG(int64_t, max_consecutive_skips) = 10;
  TORCH_ARG(double, rollback_lr_factor) = 0.5;
  TORCH_ARG(int64_t, max_rollbacks) = 3;
  TORCH_ARG(int64_t, spike_window) = 100;
  TORCH_ARG(double, spike_zscore) = 6.0;
  TORCH_ARG(bool, spike_skip) = false;
  TORCH_ARG(int64_t, inject_nonfinite_at_step) = -1;

 public:
  template <class V>
  void visit(V& v) {
    v("on_nonfinite", on_nonfinite(), "what a step with a NaN/Inf loss, gradient or update does",
      config::one_of({"halt", "skip", "rollback"}));
    v("max_consecutive_skips", max_consecutive_skips(),
      "skip: halt after this many dropped batches in a row", config::at_least(1));
    v("rollback_lr_factor", rollback_lr_factor(),
      "rollback: the LR scale is multiplied by this each time", config::greater_than(0.0),
      config::at_most(1.0));
    v("max_rollbacks", max_rollbacks(), "rollback: halt when one more would be needed",
      config::at_least(0));
    v("spike_window", spike_window(),
      "spike detector: recent steps a loss or grad norm is compared with (0: off; else >= 2)",
      config::in_range(0, 1000000));
    v("spike_zscore", spike_zscore(), "a spike is this many standard deviations above the mean",
      config::greater_than(0.0), config::finite());
    v("spike_skip", spike_skip(), "also drop a spike's batch (else it is only logged)");
    v("inject_nonfinite_at_step", inject_nonfinite_at_step(),
      "test hook: this step's gradients become NaN, once per process (-1: never)",
      config::at_least(-1));
  }

  NonFinitePolicy policy() const;
};

std::string policy_name(NonFinitePolicy policy);

// The name of the first floating-point tensor holding a NaN or Inf, "" when all are finite.
// One float64 sum per tensor and a single host synchronisation; only when that total is not
// finite are the tensors scanned one by one to name the culprit (a float64 sum of float32
// values cannot overflow, so the fast path has no false alarms).
std::string first_nonfinite(const NamedTensorList& tensors);

NamedTensorList named_parameters_and_buffers(const torch::nn::Module& module);
// Gradients of the parameters, named after their parameters.
NamedTensorList named_gradients(const torch::nn::Module& module);
// The AdamW/Adam moments (SGD: momentum buffers) of every parameter `optimizer` holds state for,
// named like "optimizer.exp_avg[blocks.0.attn.q_proj.weight]" (parameter names from `model`).
NamedTensorList named_optimizer_state(const torch::nn::Module& model,
                                      const torch::optim::Optimizer& optimizer);

// Parameters, buffers and optimizer moments: what an update may have made non-finite.
NamedTensorList named_parameters_and_moments(const torch::nn::Module& model,
                                             const torch::optim::Optimizer& optimizer);

// UserError when a loaded model has a non-finite weight: names `source` (a checkpoint) and the
// tensor. Used by eval and sample, which would otherwise print -nan or fail in multinomial.
void check_finite_weights(const torch::nn::Module& model, const std::string& source);

// Rolling z-score of one scalar series over the last `window` accepted values. z-scores are 0
// until the window is full, and when the window has no spread.
class SpikeDetector {
 public:
  explicit SpikeDetector(int64_t window = 0) : window_(window) {}
  double zscore(double value) const;
  void push(double value);
  // The window as text (17 significant digits), for TrainState::extra: bitwise resume.
  std::string serialize() const;
  void restore(const std::string& text);
  size_t size() const { return values_.size(); }

 private:
  int64_t window_;
  std::deque<double> values_;
};

}  // namespace attnlab
