// The optimizer (`optim=adamw|sgd`, a name -> factory registry) with parameter groups, following
// nanoGPT/HF practice:
//   * decay vs no-decay: a parameter gets weight decay unless is_no_decay(name, tensor) — i.e. it
//     has fewer than 2 dims (biases, norm gains) or its name contains "embed" (token embeddings,
//     tied to the output head in model=gpt). Matrices elsewhere decay.
//   * `lr_multipliers: {"blocks.0.*": 0.1}` scales a group's LR (glob over parameter names; when
//     several patterns match a name, the first one written wins).
//   * `freeze: ["embed.*"]` sets requires_grad=false and leaves those parameters out of the
//     optimizer. Any freeze/multiplier pattern matching no parameter is a UserError.
// One torch param group per (decay, multiplier) pair, in the model's parameter order, so the group
// layout — and therefore optimizer checkpoints — is deterministic for a given config.
// Config: optim.name picks the optimizer from optimizer_registry(): adamw (optim.{lr, betas, eps,
// weight_decay, grad_clip}) or sgd (optim.{lr, momentum, nesterov, weight_decay, grad_clip}; weight
// decay added to the gradient, as torch.optim.SGD does). Keys of the other optimizer are errors.
// Top-level freeze and lr_multipliers apply to both.
#pragma once

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "common/registry.h"

namespace attnlab {

struct OptimConfig {
  std::string name = "adamw";  // a key of optimizer_registry()
  double lr = 3e-4;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  double grad_clip = 1.0;  // max global grad norm; <= 0 disables clipping
  double momentum = 0.9;   // sgd
  bool nesterov = true;    // sgd
  static OptimConfig from_config(const YAML::Node& config);
};

// One parameter group as the factories receive it: its tensors, learning rate and weight decay.
struct ParamGroupSpec {
  std::vector<torch::Tensor> params;
  double lr = 0.0;
  double weight_decay = 0.0;
};

// A registry entry: the optimizer's own keys under `optim` (besides name, lr, weight_decay and
// grad_clip, which every optimizer takes) and its factory.
struct OptimizerSpec {
  std::vector<std::string> keys;
  std::function<std::unique_ptr<torch::optim::Optimizer>(const std::vector<ParamGroupSpec>& groups,
                                                         const OptimConfig& config)>
      make;
};
// name -> spec: adamw, sgd. Adding an optimizer = one spec + one line in optimizer.cpp and one
// configs/optim/<name>.yaml.
Registry<OptimizerSpec>& optimizer_registry();

// Describes torch param group i (same index as optimizer->param_groups()).
struct ParamGroupInfo {
  std::string label;  // e.g. "decay", "no_decay lr_x0.1"
  bool decay = true;
  double lr_multiplier = 1.0;
  std::vector<std::string> names;  // parameter names in the group
};

struct OptimizerSetup {
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::vector<ParamGroupInfo> groups;
  std::vector<std::string> frozen;       // names set to requires_grad=false
  std::vector<torch::Tensor> trainable;  // every optimised parameter (for grad clipping)
  OptimConfig config;
};

// The rule for groups: no weight decay for dim < 2 or names containing "embed".
bool is_no_decay(const std::string& name, const torch::Tensor& parameter);

// Builds groups + the optimizer from `config` over model.named_parameters(); applies `freeze`.
OptimizerSetup make_optimizer(torch::nn::Module& model, const YAML::Node& config);

// Sets every group's lr to base_lr * group multiplier (base_lr = optim.lr * schedule factor).
void set_learning_rate(OptimizerSetup& setup, double base_lr);

// Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True); LibTorch 1.13's
// zero_grad() fills zeros instead). The next backward then stores its gradient directly rather
// than filling zeros and adding to them: two fewer passes over all gradients per step, with the
// same values (0 + g == g), so bitwise resume is unaffected.
void clear_gradients(OptimizerSetup& setup);

// Clips the global grad norm to config.grad_clip (when > 0); returns the norm before clipping.
double clip_gradients(OptimizerSetup& setup);

}  // namespace attnlab
