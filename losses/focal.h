// Focal loss (Lin et al. 2017; docs/methods.md §5) as a pure function and as the `focal` loss term.
//
// softmax mode (multi-class; class dimension = last dim): logits [..., C], targets [...] int64.
//   pt (default): (1-p_y)^g * [(1-eps) a_y (-log p_y) + eps/C sum_c a_c (-log p_c)]
//   soft:         sum_c q_c a_c (1-p_c)^g (-log p_c),  q = (1-eps) onehot(y) + eps/C
//   Alpha enters like F.cross_entropy's `weight` (per target component), so with g = 0 both
//   readings equal F.cross_entropy(weight=alpha, label_smoothing=eps) per sample.
// sigmoid mode (binary / multi-label, torchvision sigmoid_focal_loss): logits [...]; targets
//   either the same shape (0/1 or soft, any dtype) or int64 class indices [...-1] (one-hot over
//   the last dim of the logits).
//   pt (default):  a_t (1-p_t)^g BCE(x, y_s), p_t = p y + (1-p)(1-y), a_t = a y + (1-a)(1-y)
//                  (y the unsmoothed target; y_s = y(1-eps) + eps/2). eps = 0: exactly
//                  torchvision, soft targets included.
//   soft:          a y_s (1-p)^g (-log p) + (1-a)(1-y_s) p^g (-log(1-p))
//   Scalar alpha < 0 disables alpha (torchvision); a per-class alpha must lie in [0, 1].
// Everything is computed in >= fp32 from log_softmax / log_sigmoid; (1-p) comes from expm1 /
// sigmoid(-x) so gradients stay finite as p -> 1 (and g = 0 skips the power entirely).
// ignore_index: softmax rows / sigmoid elements (or index rows) equal to it contribute nothing.
// Reductions: none (per sample/element, ignored = 0), sum, mean (over non-ignored samples, as
// AdeelH's reference — NOT divided by sum of alpha), weighted_mean (sum / sum of alpha_y over
// non-ignored samples, softmax: == F.cross_entropy(weight=alpha) at g = 0; sigmoid: / sum a_t).
//
// `focal` term keys: mode (softmax|sigmoid, default softmax), gamma (default 2), alpha (scalar,
// per-class list, `auto` or `none`; default none for softmax, 0.25 for sigmoid), ignore_index
// (-100), label_smoothing (0), smoothing_mode (pt|soft), reduction (mean|sum|weighted_mean).
// alpha: auto = inverse class frequency of the training split, alpha_c proportional to 1/n_c
// (n_c clamped to >= 1), normalised so that mean_c alpha_c = 1; needs set_class_counts() (the
// classification trainer calls it) and softmax mode.
#pragma once

#include <torch/arg.h>
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "losses/loss_term.h"

namespace attnlab {

// The `focal` term's keys (besides name and weight); configs/loss/focal.yaml lists them.
struct FocalTermOptions {
  TORCH_ARG(std::string, mode) = "softmax";
  TORCH_ARG(double, gamma) = 2.0;
  TORCH_ARG(std::optional<std::vector<std::string>>, alpha) = std::nullopt;
  TORCH_ARG(int64_t, ignore_index) = -100;
  TORCH_ARG(double, label_smoothing) = 0.0;
  TORCH_ARG(std::string, smoothing_mode) = "pt";
  TORCH_ARG(std::string, reduction) = "mean";

 public:
  template <class V>
  void visit(V& v) {
    v("mode", mode(), "softmax (multi-class) | sigmoid (binary / multi-label)",
      config::one_of({"softmax", "sigmoid"}));
    v("gamma", gamma(), "focusing exponent", config::at_least(0.0), config::finite());
    v("alpha", alpha(),
      "one number, a list per class, auto (inverse class frequency, softmax) or none; null: "
      "none for softmax, 0.25 for sigmoid");
    v("ignore_index", ignore_index(), "target id that contributes nothing");
    v("label_smoothing", label_smoothing(), "eps", config::in_range(0.0, 1.0));
    v("smoothing_mode", smoothing_mode(), "pt | soft: the two readings of label smoothing",
      config::one_of({"pt", "soft"}));
    v("reduction", reduction(), "mean | sum | weighted_mean",
      config::one_of({"mean", "sum", "weighted_mean"}));
  }
};

enum class FocalMode { kSoftmax, kSigmoid };
enum class FocalSmoothing { kPt, kSoft };
enum class FocalReduction { kNone, kSum, kMean, kWeightedMean };

struct FocalOptions {
  FocalMode mode = FocalMode::kSoftmax;
  double gamma = 2.0;
  // Undefined: no alpha. 0-d: scalar. [C]: per class (last dim of the logits).
  torch::Tensor alpha;
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
  FocalSmoothing smoothing = FocalSmoothing::kPt;
  FocalReduction reduction = FocalReduction::kMean;
};

torch::Tensor focal_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                         const FocalOptions& options);

// alpha_c = C * (1/n_c) / sum_k (1/n_k), n_c clamped to >= 1 (so mean_c alpha_c = 1).
torch::Tensor inverse_frequency_alpha(const std::vector<int64_t>& counts);

class FocalTerm : public LossTerm {
 public:
  FocalTerm(const FocalTermOptions& options, const LossTermContext& context);
  TapRequest taps(int64_t n_layers) const override;
  torch::Tensor compute(const ModelOutput& output, const Batch& batch,
                        std::map<std::string, torch::Tensor>& stats) const override;
  void set_class_counts(const std::vector<int64_t>& counts) override;
  const FocalOptions& options() const { return options_; }

 private:
  FocalOptions options_;
  bool alpha_auto_ = false;
  std::string where_;
};

}  // namespace attnlab
