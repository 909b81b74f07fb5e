// Training objectives: how a sampled batch becomes model inputs, a forward pass and a loss.
// `autoregressive` (next-token prediction, the default) and `masked_diffusion` (absorbing-state
// diffusion LM, methods.md §4) are registered in trainer/objective_registry.cpp by name
// (`objective.name`).
#pragma once

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <memory>

#include "common/registry.h"
#include "modules/gpt.h"
#include "modules/model_output.h"

namespace attnlab {

class LossSet;
struct LossResult;

struct ObjectiveContext {
  const YAML::Node* config = nullptr;  // the resolved run config
  int64_t mask_token = -1;             // tokenizer's [MASK] id
  int64_t bos_token = -1;
  torch::Generator generator;          // objective randomness (masking, t); checkpointed by the trainer
};

class ObjectiveImpl {
 public:
  virtual ~ObjectiveImpl() = default;
  // Runs the model on `batch` (already on the model's device) and returns the total loss with its
  // logged terms. `training` selects train-time behaviour (dropout, aux losses).
  virtual LossResult compute(GptImpl& model, const Batch& batch, const LossSet& losses,
                             ObjectiveContext& context, bool training) = 0;
};

using ObjectiveFactory = std::function<std::unique_ptr<ObjectiveImpl>(const YAML::Node& config)>;
Registry<ObjectiveFactory>& objective_registry();

}  // namespace attnlab
