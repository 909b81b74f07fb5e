// `cross_entropy` loss term: token-level (logits [B, T, V] vs Batch.target, honouring
// Batch.loss_mask) or classification (logits [B, C] vs Batch.labels) cross-entropy, computed in
// at least fp32 from log_softmax (PyTorch's fused cross_entropy on upcast logits), averaged over
// the counted (non-ignored, unmasked) tokens.
//   keys: ignore_index (default -100), label_smoothing (default 0; PyTorch's definition
//   (1-eps) * -log p_y + eps/C * sum_c -log p_c).
#pragma once

#include <torch/arg.h>

#include "losses/loss_term.h"

namespace attnlab {

// The `cross_entropy` term's keys (besides name and weight).
struct CrossEntropyTermOptions {
  TORCH_ARG(int64_t, ignore_index) = -100;
  TORCH_ARG(double, label_smoothing) = 0.0;

 public:
  template <class V>
  void visit(V& v) {
    v("ignore_index", ignore_index(), "target id that contributes nothing");
    v("label_smoothing", label_smoothing(), "eps of PyTorch's label smoothing",
      config::in_range(0.0, 1.0));
  }
};

struct CrossEntropyOptions {
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
};

// Mean over non-ignored rows of logits [N, C] vs targets [N]; 0 (with a graph) when none count.
torch::Tensor cross_entropy_mean(const torch::Tensor& logits, const torch::Tensor& targets,
                                 const CrossEntropyOptions& options);

class CrossEntropyTerm : public LossTerm {
 public:
  CrossEntropyTerm(const CrossEntropyTermOptions& options, const LossTermContext& context);
  TapRequest taps(int64_t n_layers) const override;
  torch::Tensor compute(const ModelOutput& output, const Batch& batch,
                        std::map<std::string, torch::Tensor>& stats) const override;

 private:
  CrossEntropyOptions options_;
};

}  // namespace attnlab
