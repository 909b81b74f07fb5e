// What a model forward produces and what the losses may ask it to produce ("taps").
// Loss terms declare a TapRequest; the model computes only requested internals, so attention
// probabilities are never materialised unless some term or probe needs them.
#pragma once

#include <torch/torch.h>

#include <map>
#include <set>
#include <string>

#include "data/batch.h"  // Batch, what losses read besides the model output

namespace attnlab {

struct TapRequest {
  bool logits = true;
  // Outputs of these blocks (0-based; block l's residual-stream output, before the final norm).
  // HF's output_hidden_states[l] for l = 1..L-1 is hidden[l-1] here.
  std::set<int64_t> hidden_layers;
  // Attention probabilities [B, H, T_q, T_k] of these blocks.
  std::set<int64_t> prob_layers;

  void merge(const TapRequest& other) {
    logits = logits || other.logits;
    hidden_layers.insert(other.hidden_layers.begin(), other.hidden_layers.end());
    prob_layers.insert(other.prob_layers.begin(), other.prob_layers.end());
  }
};

struct ModelOutput {
  torch::Tensor logits;                             // [B, T, V] when requested
  std::map<int64_t, torch::Tensor> hidden;          // requested block outputs [B, T, C]
  std::map<int64_t, torch::Tensor> probs;           // requested attention probabilities
  std::map<std::string, torch::Tensor> aux_losses;  // module aux losses, averaged over layers
  std::map<std::string, torch::Tensor> stats;       // detached diagnostics, e.g. "layer3/head_util"
};

}  // namespace attnlab
