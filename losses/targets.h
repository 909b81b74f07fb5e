// The (logits, class-index targets) pair that classification-style terms (cross_entropy, focal)
// read from a model output and a batch, flattened to [N, C] / [N]:
//  - classification: logits [B, C] with Batch.labels [B];
//  - token prediction: logits [B, T, V] with Batch.target [B, T]; positions where
//    Batch.loss_mask is false get `ignore_index`, so every term drops them the same way.
#pragma once

#include <torch/torch.h>

#include <string>

#include "modules/model_output.h"

namespace attnlab {

struct PredictionTargets {
  torch::Tensor logits;   // [N, C]
  torch::Tensor targets;  // [N] int64
};

PredictionTargets prediction_targets(const ModelOutput& output, const Batch& batch,
                                     int64_t ignore_index, const std::string& term);

// Reads hidden state / attention-prob taps with a clear message when the model did not fill them.
const torch::Tensor& hidden_tap(const ModelOutput& output, int64_t layer, const std::string& term);
const torch::Tensor& prob_tap(const ModelOutput& output, int64_t layer, const std::string& term);

}  // namespace attnlab
