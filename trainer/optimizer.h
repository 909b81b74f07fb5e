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
// Config: optim.name picks the optimizer from optimizer_registry(): adamw (AdamWOptions) or sgd
// (SGDOptions; weight decay added to the gradient, as torch.optim.SGD does). Each binds the `optim`
// group strictly (config/options.h): a key of the other optimizer is an error, not a silently
// ignored setting. Top-level freeze and lr_multipliers (ParameterRules) apply to both.
#pragma once

#include <torch/arg.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/registry.h"
#include "config/option_schema.h"

namespace attnlab {

// optim=adamw (configs/optim/adamw.yaml holds the same values; a test keeps them equal).
struct AdamWOptions {
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(std::vector<double>, betas) = std::vector<double>{0.9, 0.95};
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, weight_decay) = 0.1;
  TORCH_ARG(double, grad_clip) = 1.0;

 public:
  template <class V>
  void visit(V& v) {
    v("lr", lr(), "peak learning rate (the schedule and each group's multiplier scale it)",
      config::at_least(0.0), config::finite());
    v("betas", betas(), "Adam's (beta1, beta2)", config::length_is(2), config::at_least(0.0),
      config::less_than(1.0));
    v("eps", eps(), "added to the denominator", config::at_least(0.0));
    v("weight_decay", weight_decay(), "decoupled weight decay of the decay groups",
      config::at_least(0.0));
    v("grad_clip", grad_clip(), "max global gradient norm; 0 disables clipping",
      config::at_least(0.0));
  }
};

// optim=sgd (configs/optim/sgd.yaml).
struct SGDOptions {
  TORCH_ARG(double, lr) = 0.1;
  TORCH_ARG(double, momentum) = 0.9;
  TORCH_ARG(bool, nesterov) = true;
  TORCH_ARG(double, weight_decay) = 0.0;
  TORCH_ARG(double, grad_clip) = 1.0;

 public:
  template <class V>
  void visit(V& v) {
    v("lr", lr(), "peak learning rate (the schedule and each group's multiplier scale it)",
      config::at_least(0.0), config::finite());
    v("momentum", momentum(), "momentum factor", config::at_least(0.0), config::less_than(1.0));
    v("nesterov", nesterov(), "Nesterov momentum (needs momentum > 0)");
    v("weight_decay", weight_decay(), "L2 penalty added to the gradient of the decay groups",
      config::at_least(0.0));
    v("grad_clip", grad_clip(), "max global gradient norm; 0 disables clipping",
      config::at_least(0.0));
  }
};

// The options of the optimizer optim.name chose: one alternative per registry entry.
using OptimizerOptions = std::variant<AdamWOptions, SGDOptions>;

// What every optimizer has, whatever its options type.
double base_lr(const OptimizerOptions& options);
double weight_decay(const OptimizerOptions& options);
double grad_clip(const OptimizerOptions& options);

// One parameter group as the factories receive it: its tensors, learning rate and weight decay.
struct ParamGroupSpec {
  std::vector<torch::Tensor> params;
  double lr = 0.0;
  double weight_decay = 0.0;
};

// A registry entry: the entry's options (default constructed: the alternative that binding the
// `optim` group fills) and its factory, which receives that same alternative.
struct OptimizerSpec {
  OptimizerOptions defaults;
  std::function<std::unique_ptr<torch::optim::Optimizer>(const std::vector<ParamGroupSpec>& groups,
                                                         const OptimizerOptions& options)>
      make;
};
// name -> spec: adamw, sgd. Adding an optimizer = one options struct (and variant alternative),
// one factory and one line in optimizer.cpp, and one configs/optim/<name>.yaml.
Registry<OptimizerSpec>& optimizer_registry();

// Binds the `optim` group into the options of the optimizer optim.name names (default adamw);
// UserError naming the key for an unknown name, key, type or value. Defined for YAML::Node.
template <class ConfigTree>
OptimizerOptions optimizer_options(const ConfigTree& config);

// Top-level `freeze` and `lr_multipliers` (in the order written: the first match wins).
struct ParameterRules {
  std::vector<std::string> freeze;
  std::vector<std::pair<std::string, double>> lr_multipliers;
};
template <class ConfigTree>
ParameterRules parameter_rules(const ConfigTree& config);

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
  OptimizerOptions options;
};

// The rule for groups: no weight decay for dim < 2 or names containing "embed".
bool is_no_decay(const std::string& name, const torch::Tensor& parameter);

// Builds groups + the optimizer over model.named_parameters(); applies `freeze`.
OptimizerSetup make_optimizer(torch::nn::Module& model, const OptimizerOptions& options,
                              const ParameterRules& rules);
// optimizer_options(config) and parameter_rules(config), then the above. Defined for YAML::Node.
template <class ConfigTree>
OptimizerSetup make_optimizer(torch::nn::Module& model, const ConfigTree& config);

// Sets every group's lr to base_lr * group multiplier (base_lr = optim.lr * schedule factor).
void set_learning_rate(OptimizerSetup& setup, double base_lr);

// Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True); LibTorch 1.13's
// zero_grad() fills zeros instead). The next backward then stores its gradient directly rather
// than filling zeros and adding to them: two fewer passes over all gradients per step, with the
// same values (0 + g == g), so bitwise resume is unaffected.
void clear_gradients(OptimizerSetup& setup);

// Clips the global grad norm to optim.grad_clip (when > 0); returns the norm before clipping.
double clip_gradients(OptimizerSetup& setup);

}  // namespace attnlab
