// `decorrelation` loss term (Llama-AVSR sink loss; docs/methods.md §6): pushes each prefix token's
// hidden state away from the BOS token's, against attention sinks / massive activations:
//   L = factor * mean_{l in layers} [ sum_{b, s=1..P} cos(h_l[b,0], h_l[b,s])^2 / (B * P) ]
// cos via L2-normalisation with eps 1e-12 (F.normalize), squared, BOS (position 0) excluded.
// With a token mask the division is by the number of counted (b, s) instead of B * P.
//   keys: layers (block indices; default every block but the last, i.e. hidden[0..L-2] = HF
//         output_hidden_states[1..L-1]), prefix_length (P; default all tokens after BOS; must be
//         <= T-1), token_mask (none | loss_mask | key_padding; default none), factor.
// factor: the reference code's --sink-loss-factor default is 10000 (its paper's value is
// unconfirmed); this term's code default is 1.0 because `weight` already scales it and cos^2 in
// [0, 1] at factor 1 is on the scale of an LM's cross-entropy (configs/loss/decorrelation.yaml
// documents the LM choice). Set factor: 10000 for Llama-AVSR parity.
// Diagnostics (detached): stat/bos_cos/layer<l> (mean cosine to BOS over the counted tokens) and
// stat/max_act/layer<l> (max |activation| of the block output, "massive activations").
#pragma once

#include <torch/arg.h>
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "losses/loss_term.h"

namespace attnlab {

// sum_{b, s in 1..P, mask} cos(h[b,0], h[b,s])^2 / count, for hidden [B, T, C] and optional
// token_mask [B, T] bool (true = counted). prefix_length < 0: P = T - 1.
torch::Tensor bos_decorrelation(const torch::Tensor& hidden, int64_t prefix_length,
                                const torch::Tensor& token_mask = {});

// Cosines cos(h[b,0], h[b,s]) for s = 1..P: [B, P] (fp32 or double).
torch::Tensor bos_cosines(const torch::Tensor& hidden, int64_t prefix_length);

// The `decorrelation` term's keys (besides name and weight); configs/loss/decorrelation.yaml.
struct DecorrelationTermOptions {
  TORCH_ARG(std::optional<std::vector<int64_t>>, layers) = std::nullopt;
  TORCH_ARG(std::optional<int64_t>, prefix_length) = std::nullopt;
  TORCH_ARG(std::string, token_mask) = "none";
  TORCH_ARG(double, factor) = 1.0;

 public:
  template <class V>
  void visit(V& v) {
    v("layers", layers(),
      "blocks whose output is decorrelated (negatives count from the end); null: every block but "
      "the last");
    v("prefix_length", prefix_length(), "tokens after BOS compared with it; null: all",
      config::at_least(1));
    v("token_mask", token_mask(), "none | loss_mask | key_padding: which tokens count",
      config::one_of({"none", "loss_mask", "key_padding"}));
    v("factor", factor(), "multiplies the term before its weight", config::finite());
  }
};

class DecorrelationTerm : public LossTerm {
 public:
  DecorrelationTerm(const DecorrelationTermOptions& options, const LossTermContext& context);
  TapRequest taps(int64_t n_layers) const override;
  torch::Tensor compute(const ModelOutput& output, const Batch& batch,
                        std::map<std::string, torch::Tensor>& stats) const override;
  const std::vector<int64_t>& layers() const { return layers_; }

 private:
  std::vector<int64_t> layers_;
  int64_t prefix_length_ = -1;
  std::string token_mask_ = "none";
  double factor_ = 1.0;
  std::string where_;
};

}  // namespace attnlab
