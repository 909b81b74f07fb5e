// `cross_entropy` loss term: token-level (logits [B, T, V] vs Batch.target, honouring
// Batch.loss_mask) or classification (logits [B, C] vs Batch.labels) cross-entropy, computed in
// at least fp32 from log_softmax (PyTorch's fused cross_entropy on upcast logits), averaged over
// the counted (non-ignored, unmasked) tokens.
//   keys: ignore_index (default -100), label_smoothing (default 0; PyTorch's definition
//   (1-eps) * -log p_y + eps/C * sum_c -log p_c).
#pragma once

#include "losses/loss_term.h"

namespace attnlab {

struct CrossEntropyOptions {
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
};

// Mean over non-ignored rows of logits [N, C] vs targets [N]; 0 (with a graph) when none count.
torch::Tensor cross_entropy_mean(const torch::Tensor& logits, const torch::Tensor& targets,
                                 const CrossEntropyOptions& options);

class CrossEntropyTerm : public LossTerm {
 public:
  explicit CrossEntropyTerm(const TermConfig& config);
  static std::vector<std::string> keys() { return {"ignore_index", "label_smoothing"}; }
  TapRequest taps(int64_t n_layers) const override;
  torch::Tensor compute(const ModelOutput& output, const Batch& batch,
                        std::map<std::string, torch::Tensor>& stats) const override;

 private:
  CrossEntropyOptions options_;
};

}  // namespace attnlab
