// Implementation of losses/targets.h.
#include "losses/targets.h"

namespace attnlab {

PredictionTargets prediction_targets(const ModelOutput& output, const Batch& batch,
                                     int64_t ignore_index, const std::string& term) {
  TORCH_CHECK(output.logits.defined(), "loss term '", term,
              "' needs logits but the model output has none (taps not honoured?)");
  PredictionTargets out;
  if (output.logits.dim() == 2) {
    TORCH_CHECK(batch.labels.defined(), "loss term '", term,
                "': 2-D logits [B, C] need Batch.labels [B]");
    TORCH_CHECK(batch.labels.dim() == 1 && batch.labels.size(0) == output.logits.size(0),
                "loss term '", term, "': labels ", batch.labels.sizes(), " do not match logits ",
                output.logits.sizes());
    out.logits = output.logits;
    out.targets = batch.labels.to(torch::kLong);
    return out;
  }
  TORCH_CHECK(output.logits.dim() == 3, "loss term '", term, "': expected logits [B, T, V], got ",
              output.logits.sizes());
  TORCH_CHECK(batch.target.defined() && batch.target.dim() == 2 &&
                  batch.target.size(0) == output.logits.size(0) &&
                  batch.target.size(1) == output.logits.size(1),
              "loss term '", term, "': Batch.target must be [B, T] matching logits ",
              output.logits.sizes());
  torch::Tensor targets = batch.target.to(torch::kLong);
  if (batch.loss_mask.defined())
    targets = targets.masked_fill(batch.loss_mask.logical_not(), ignore_index);
  out.logits = output.logits.reshape({-1, output.logits.size(-1)});
  out.targets = targets.reshape({-1});
  return out;
}

const torch::Tensor& hidden_tap(const ModelOutput& output, int64_t layer, const std::string& term) {
  auto it = output.hidden.find(layer);
  TORCH_CHECK(it != output.hidden.end() && it->second.defined(), "loss term '", term,
              "' needs the hidden state of block ", layer,
              " but the model output has none (taps not honoured?)");
  return it->second;
}

const torch::Tensor& prob_tap(const ModelOutput& output, int64_t layer, const std::string& term) {
  auto it = output.probs.find(layer);
  TORCH_CHECK(it != output.probs.end() && it->second.defined(), "loss term '", term,
              "' needs the attention probabilities of block ", layer,
              " but the model output has none (taps not honoured?)");
  return it->second;
}

}  // namespace attnlab
