// The optimizer (`optim=adamw|sgd|muon`, a name -> factory registry) with parameter groups,
// following nanoGPT/HF practice:
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
// ignored setting. Top-level freeze and lr_multipliers (ParameterRules) apply to all.
// optim=muon (MuonOptions; trainer/muon.h) splits the parameters further by update rule first:
// Muon for the hidden matrices (is_muon_matrix), AdamW with its decay/no-decay groups for the
// rest; each rule has its own lr and weight decay (optim.muon.*, optim.adamw.*).
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

// The AdamW update: learning rate, moments and decoupled weight decay, each default here once.
// optim=adamw adds gradient clipping (AdamWOptions); optim=muon's `adamw` group updates the
// parameters Muon does not (MuonOptions::adamw).
struct AdamWUpdateOptions {
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(std::vector<double>, betas) = std::vector<double>{0.9, 0.95};
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, weight_decay) = 0.1;

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
  }
};

// optim=adamw (configs/optim/adamw.yaml holds the same values; a test keeps them equal).
struct AdamWOptions : AdamWUpdateOptions {
  TORCH_ARG(double, grad_clip) = 1.0;

 public:
  template <class V>
  void visit(V& v) {
    AdamWUpdateOptions::visit(v);
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

// optim=muon, optim.muon: the Muon update of the hidden matrices (trainer/muon.h). lr and
// weight_decay follow Keller Jordan's Muon reference (lr 0.02 with the "original" shape scale, no
// weight decay); the rest are torch.optim.Muon's arguments and defaults.
struct MuonMatrixOptions {
  TORCH_ARG(double, lr) = 0.02;
  TORCH_ARG(double, weight_decay) = 0.0;
  TORCH_ARG(double, momentum) = 0.95;
  TORCH_ARG(bool, nesterov) = true;
  TORCH_ARG(std::vector<double>, ns_coefficients) = std::vector<double>{3.4445, -4.775, 2.0315};
  TORCH_ARG(int64_t, ns_steps) = 5;
  TORCH_ARG(double, eps) = 1e-7;
  TORCH_ARG(std::string, adjust_lr_fn) = "original";

 public:
  template <class V>
  void visit(V& v) {
    v("lr", lr(),
      "peak learning rate of the hidden matrices (the schedule and each group's multiplier "
      "scale it; adjust_lr_fn scales it by shape)",
      config::at_least(0.0), config::finite());
    v("weight_decay", weight_decay(), "decoupled weight decay of the hidden matrices (times lr)",
      config::at_least(0.0));
    v("momentum", momentum(), "momentum factor of the buffer B <- momentum B + (1 - momentum) G",
      config::at_least(0.0), config::less_than(1.0));
    v("nesterov", nesterov(), "Nesterov: orthogonalise G + momentum (B - G) instead of B");
    v("ns_coefficients", ns_coefficients(), "(a, b, c) of the quintic Newton-Schulz iteration",
      config::length_is(3), config::finite());
    v("ns_steps", ns_steps(), "Newton-Schulz iterations", config::at_least(1),
      config::less_than(100));
    v("eps", eps(), "floor of the Frobenius norm the update is divided by before Newton-Schulz",
      config::at_least(0.0));
    v("adjust_lr_fn", adjust_lr_fn(),
      "shape scale of the lr: original = sqrt(max(1, rows/cols)); match_rms_adamw = "
      "0.2 sqrt(max(rows, cols))",
      config::one_of({"original", "match_rms_adamw"}));
  }
};

// optim=muon (configs/optim/muon.yaml): Muon for the hidden matrices (is_muon_matrix), AdamW for
// the rest, each with its own learning rate and weight decay.
struct MuonOptions {
  TORCH_ARG(MuonMatrixOptions, muon);
  // The AdamW update of embeddings, output head, norms, biases and other 1-D parameters (weight
  // decay on the decay groups only, as under optim=adamw).
  TORCH_ARG(AdamWUpdateOptions, adamw);
  TORCH_ARG(double, grad_clip) = 1.0;

 public:
  template <class V>
  void visit(V& v) {
    v("muon", muon(), "Muon, for the hidden weight matrices");
    v("adamw", adamw(), "AdamW, for embeddings, output head, norms, biases and 1-D parameters");
    v("grad_clip", grad_clip(), "max global gradient norm (all parameters); 0 disables clipping",
      config::at_least(0.0));
  }
};

// The options of the optimizer optim.name chose: one alternative per registry entry.
using OptimizerOptions = std::variant<AdamWOptions, SGDOptions, MuonOptions>;

// What every optimizer has, whatever its options type. base_lr is the learning rate the loop logs
// as `lr` (optim=muon: optim.muon.lr); each param group's own base is ParamGroupInfo::base_lr.
double base_lr(const OptimizerOptions& options);
double grad_clip(const OptimizerOptions& options);

// How a param group is updated: the optimizer's one rule, or under optim=muon either rule.
enum class UpdateRule { kDefault, kMuon, kAdamW };

// One parameter group as the factories receive it: its tensors, learning rate, weight decay and
// (optim=muon) rule.
struct ParamGroupSpec {
  std::vector<torch::Tensor> params;
  double lr = 0.0;
  double weight_decay = 0.0;
  UpdateRule rule = UpdateRule::kDefault;
};

// A registry entry: the entry's options (default constructed: the alternative that binding the
// `optim` group fills) and its factory, which receives that same alternative.
struct OptimizerSpec {
  OptimizerOptions defaults;
  std::function<std::unique_ptr<torch::optim::Optimizer>(const std::vector<ParamGroupSpec>& groups,
                                                         const OptimizerOptions& options)>
      make;
};
// name -> spec: adamw, sgd, muon. Adding an optimizer = one options struct (and variant
// alternative), one factory and one line in optimizer.cpp, and one configs/optim/<name>.yaml.
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
  std::string label;  // e.g. "decay", "no_decay lr_x0.1", "muon", "adamw no_decay lr_x0.1"
  bool decay = true;
  double lr_multiplier = 1.0;
  UpdateRule rule = UpdateRule::kDefault;
  double base_lr = 0.0;            // the group kind's configured lr (optim.lr, optim.muon.lr, ...)
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

// optim=muon's rule: Muon updates the 2-D parameters that are neither embeddings (is_no_decay)
// nor the output head (a top-level lm_head or classifier module); AdamW updates the rest.
bool is_muon_matrix(const std::string& name, const torch::Tensor& parameter);

// Builds groups + the optimizer over model.named_parameters(); applies `freeze`.
OptimizerSetup make_optimizer(torch::nn::Module& model, const OptimizerOptions& options,
                              const ParameterRules& rules);
// optimizer_options(config) and parameter_rules(config), then the above. Defined for YAML::Node.
template <class ConfigTree>
OptimizerSetup make_optimizer(torch::nn::Module& model, const ConfigTree& config);

// Sets group i's lr to its base_lr * lr_factor * lr_scale * lr_multiplier (lr_factor: the
// schedule's, lr_scale: the divergence guard's), so every kind of group follows the schedule from
// its own base learning rate.
void set_learning_rate(OptimizerSetup& setup, double lr_factor, double lr_scale = 1.0);

// One line per param group (label, optimizer settings, parameter names) for the run's start.
std::string describe_param_groups(const OptimizerSetup& setup);

// Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True); LibTorch 1.13's
// zero_grad() fills zeros instead). The next backward then stores its gradient directly rather
// than filling zeros and adding to them: two fewer passes over all gradients per step, with the
// same values (0 + g == g), so bitwise resume is unaffected.
void clear_gradients(OptimizerSetup& setup);

// Clips the global grad norm to optim.grad_clip (when > 0); returns the norm before clipping.
double clip_gradients(OptimizerSetup& setup);

}  // namespace attnlab
