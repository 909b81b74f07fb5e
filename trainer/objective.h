// Training objectives: how a sampled batch becomes model inputs, a forward pass and a loss.
// `autoregressive` (next-token prediction, the default) and `masked_diffusion` (absorbing-state
// diffusion LM, docs/methods.md §4) are registered in trainer/objective_registry.cpp by name
// (`objective.name`).
#pragma once

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/registry.h"
#include "modules/gpt.h"
#include "modules/model_output.h"

namespace attnlab {

class LossSet;
struct LossResult;
struct EvalResult;

// One row of `attnlab eval`'s table and eval.json: named numbers (counts stay integers), in
// column order.
using EvalRow = std::vector<std::pair<std::string, nlohmann::json>>;

struct ObjectiveContext {
  const YAML::Node* config = nullptr;  // the resolved run config
  int64_t mask_token = -1;             // tokenizer's [MASK] id
  int64_t bos_token = -1;
  torch::Generator generator;  // objective randomness (masking, t); checkpointed by the trainer
};

class ObjectiveImpl {
 public:
  virtual ~ObjectiveImpl() = default;
  // Runs the model on `batch` (already on the model's device) and returns the total loss with its
  // logged terms. `training` selects train-time behaviour (dropout, aux losses).
  virtual LossResult compute(GptImpl& model, const Batch& batch, const LossSet& losses,
                             ObjectiveContext& context, bool training) = 0;

  // `attnlab eval`'s reading of an evaluation at `seq_len` (trainer/evaluator.cpp): by default
  // val_loss, val_perplexity and val_bits_per_byte of the per-token loss. An objective whose
  // loss is not that (the diffusion bound) says what its numbers are.
  virtual EvalRow evaluation_row(const EvalResult& result, int64_t seq_len) const;
  // The line above the table ("" for none); `t_samples` draws of noise per window.
  virtual std::string evaluation_title(int64_t t_samples) const;
  // Whether evaluation draws noise (masking, t), so that `eval.t_samples` draws per window
  // tighten the estimate.
  virtual bool evaluates_with_noise() const { return false; }
};

using ObjectiveFactory = std::function<std::unique_ptr<ObjectiveImpl>(const YAML::Node& config)>;
Registry<ObjectiveFactory>& objective_registry();

}  // namespace attnlab
