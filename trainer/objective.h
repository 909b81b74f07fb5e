// Training objectives: how a sampled batch becomes model inputs, a forward pass and a loss.
// `autoregressive` (next-token prediction, the default) and `masked_diffusion` (absorbing-state
// diffusion LM, docs/methods.md §4) are registered in tasks/lm/objectives/objective_registry.cpp by
// name
// (`objective.name`).
#pragma once

#include <torch/torch.h>

#include <any>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/registry.h"
#include "config/option_schema.h"
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
  int64_t mask_token = -1;  // tokenizer's [MASK] id
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

// A registry entry: the objective's options struct (the keys of the `objective:` group besides
// `name`) and its factory, which receives the bound struct in a std::any.
struct ObjectiveSpec {
  config::ErasedOptions options;
  std::function<std::unique_ptr<ObjectiveImpl>(const std::any& options)> make;
};
Registry<ObjectiveSpec>& objective_registry();

// The objective objective.name names (default autoregressive), its group bound strictly (an
// unknown key or a bad value is one line naming it). Defined for YAML::Node.
template <class ConfigTree>
std::unique_ptr<ObjectiveImpl> make_objective(const ConfigTree& config);

// The objective the config chose (objective.name; a config without the group trains the
// default, autoregressive), checked against the registry. Defined for YAML::Node.
template <class ConfigTree>
std::string objective_name(const ConfigTree& config);

}  // namespace attnlab
