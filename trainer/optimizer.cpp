// make_optimizer: resolves freeze / lr_multipliers patterns against parameter names, partitions the
// trainable parameters into (decay, multiplier) groups and builds the optimizer that optim.name
// names (optimizer_registry: torch::optim::AdamW or SGD) over them.
#include "trainer/optimizer.h"

#include <cmath>
#include <map>
#include <sstream>

#include "common/config_access.h"
#include "common/error.h"
#include "common/glob.h"
#include "losses/term_config.h"

namespace attnlab {
namespace {

// "a, b, c, ... (N parameters)" — a short sample of names for "pattern matched nothing" errors.
std::string sample_names(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 6; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > 6) out += ", ...";
  return out + " (" + std::to_string(names.size()) + " parameters)";
}

void check_matches(const std::string& key, const std::string& pattern,
                   const std::vector<std::string>& names) {
  check_user(!glob_filter(pattern, names).empty(),
             "config key '" + key + "': pattern '" + pattern +
                 "' matches no parameter; parameter names are e.g. " + sample_names(names));
}

std::string format_multiplier(double m) {
  std::ostringstream os;
  os << m;
  return os.str();
}

}  // namespace

OptimConfig OptimConfig::from_config(const YAML::Node& config) {
  OptimConfig c;
  c.name = cfg::get_or<std::string>(config, "optim.name", c.name);
  // An unknown name lists the available ones. Each optimizer's own keys: another optimizer's key
  // (optim.momentum with adamw) is an error, not a silently ignored setting.
  const OptimizerSpec& spec = optimizer_registry().get(c.name);
  std::vector<std::string> allowed = {"name", "lr", "weight_decay", "grad_clip"};
  allowed.insert(allowed.end(), spec.keys.begin(), spec.keys.end());
  const YAML::Node node = cfg::find(config, "optim");
  if (node.IsMap()) TermConfig(node, "optim").check_keys(allowed);
  c.lr = cfg::get_or<double>(config, "optim.lr", c.lr);
  if (cfg::has(config, "optim.betas")) {
    auto betas = cfg::get<std::vector<double>>(config, "optim.betas");
    check_user(betas.size() == 2, "config key 'optim.betas': expected a list of 2 floats, got " +
                                      std::to_string(betas.size()) + " values");
    c.beta1 = betas[0];
    c.beta2 = betas[1];
  }
  c.eps = cfg::get_or<double>(config, "optim.eps", c.eps);
  c.weight_decay = cfg::get_or<double>(config, "optim.weight_decay", c.weight_decay);
  c.grad_clip = cfg::get_or<double>(config, "optim.grad_clip", c.grad_clip);
  c.momentum = cfg::get_or<double>(config, "optim.momentum", c.momentum);
  c.nesterov = cfg::get_or<bool>(config, "optim.nesterov", c.nesterov);
  check_user(c.lr >= 0, "config key 'optim.lr': expected >= 0, got " + format_multiplier(c.lr));
  check_user(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1,
             "config key 'optim.betas': expected values in [0, 1), got [" +
                 format_multiplier(c.beta1) + ", " + format_multiplier(c.beta2) + "]");
  check_user(c.eps >= 0, "config key 'optim.eps': expected >= 0, got " + format_multiplier(c.eps));
  check_user(c.weight_decay >= 0, "config key 'optim.weight_decay': expected >= 0, got " +
                                      format_multiplier(c.weight_decay));
  check_user(c.momentum >= 0 && c.momentum < 1,
             "config key 'optim.momentum': expected a value in [0, 1), got " +
                 format_multiplier(c.momentum));
  check_user(!c.nesterov || c.momentum > 0,
             "config key 'optim.nesterov': Nesterov momentum needs optim.momentum > 0");
  return c;
}

namespace {

std::unique_ptr<torch::optim::Optimizer> make_adamw(const std::vector<ParamGroupSpec>& groups,
                                                    const OptimConfig& c) {
  std::vector<torch::optim::OptimizerParamGroup> torch_groups;
  for (const auto& group : groups) {
    auto options = std::make_unique<torch::optim::AdamWOptions>(group.lr);
    options->betas(std::make_tuple(c.beta1, c.beta2)).eps(c.eps).weight_decay(group.weight_decay);
    torch_groups.emplace_back(group.params, std::move(options));
  }
  torch::optim::AdamWOptions defaults(c.lr);
  defaults.betas(std::make_tuple(c.beta1, c.beta2)).eps(c.eps).weight_decay(c.weight_decay);
  return std::make_unique<torch::optim::AdamW>(std::move(torch_groups), defaults);
}

std::unique_ptr<torch::optim::Optimizer> make_sgd(const std::vector<ParamGroupSpec>& groups,
                                                  const OptimConfig& c) {
  std::vector<torch::optim::OptimizerParamGroup> torch_groups;
  for (const auto& group : groups) {
    auto options = std::make_unique<torch::optim::SGDOptions>(group.lr);
    options->momentum(c.momentum).nesterov(c.nesterov).weight_decay(group.weight_decay);
    torch_groups.emplace_back(group.params, std::move(options));
  }
  torch::optim::SGDOptions defaults(c.lr);
  defaults.momentum(c.momentum).nesterov(c.nesterov).weight_decay(c.weight_decay);
  return std::make_unique<torch::optim::SGD>(std::move(torch_groups), defaults);
}

}  // namespace

Registry<OptimizerSpec>& optimizer_registry() {
  static Registry<OptimizerSpec> registry(
      "optimizer (optim.name)",
      {{"adamw", {{"betas", "eps"}, make_adamw}}, {"sgd", {{"momentum", "nesterov"}, make_sgd}}});
  return registry;
}

bool is_no_decay(const std::string& name, const torch::Tensor& parameter) {
  return parameter.dim() < 2 || name.find("embed") != std::string::npos;
}

OptimizerSetup make_optimizer(torch::nn::Module& model, const YAML::Node& config) {
  OptimizerSetup setup;
  setup.config = OptimConfig::from_config(config);

  auto named = model.named_parameters(/*recurse=*/true);
  std::vector<std::string> names;
  for (const auto& item : named) names.push_back(item.key());

  std::vector<std::string> freeze_patterns;
  if (cfg::has(config, "freeze"))
    freeze_patterns = cfg::get<std::vector<std::string>>(config, "freeze");
  for (const auto& pattern : freeze_patterns) check_matches("freeze", pattern, names);

  // Keep the order the user wrote (yaml-cpp preserves map order) so "first match wins" is defined.
  std::vector<std::pair<std::string, double>> multipliers;
  YAML::Node mult_node = cfg::find(config, "lr_multipliers");
  if (mult_node.IsDefined() && !mult_node.IsNull()) {
    check_user(mult_node.IsMap(),
               "config key 'lr_multipliers': expected a map of "
               "{glob pattern: multiplier}, got '" +
                   YAML::Dump(mult_node) + "'");
    for (const auto& entry : mult_node) {
      std::string pattern = entry.first.as<std::string>();
      double m = cfg::convert<double>(entry.second, "lr_multipliers." + pattern);
      check_user(m >= 0, "config key 'lr_multipliers." + pattern + "': expected >= 0, got " +
                             format_multiplier(m));
      check_matches("lr_multipliers", pattern, names);
      multipliers.emplace_back(pattern, m);
    }
  }

  // Group key: (decay, multiplier); groups appear in order of their first parameter.
  std::map<std::pair<bool, double>, size_t> group_index;
  std::vector<std::vector<torch::Tensor>> group_params;
  for (auto& item : named) {
    const std::string& name = item.key();
    torch::Tensor& param = item.value();
    bool frozen = false;
    for (const auto& pattern : freeze_patterns) frozen = frozen || glob_match(pattern, name);
    if (frozen) {
      param.set_requires_grad(false);
      setup.frozen.push_back(name);
      continue;
    }
    if (!param.requires_grad()) continue;  // frozen by the model itself
    double multiplier = 1.0;
    for (const auto& [pattern, m] : multipliers) {
      if (glob_match(pattern, name)) {
        multiplier = m;
        break;
      }
    }
    bool decay = !is_no_decay(name, param);
    auto key = std::make_pair(decay, multiplier);
    auto it = group_index.find(key);
    if (it == group_index.end()) {
      it = group_index.emplace(key, setup.groups.size()).first;
      ParamGroupInfo info;
      info.decay = decay;
      info.lr_multiplier = multiplier;
      info.label = std::string(decay ? "decay" : "no_decay") +
                   (multiplier == 1.0 ? "" : " lr_x" + format_multiplier(multiplier));
      setup.groups.push_back(info);
      group_params.emplace_back();
    }
    setup.groups[it->second].names.push_back(name);
    group_params[it->second].push_back(param);
    setup.trainable.push_back(param);
  }
  check_user(!setup.trainable.empty(),
             "config key 'freeze': every parameter is frozen; nothing left to train");

  const OptimConfig& c = setup.config;
  std::vector<ParamGroupSpec> specs;
  for (size_t i = 0; i < setup.groups.size(); ++i)
    specs.push_back({group_params[i], c.lr * setup.groups[i].lr_multiplier,
                     setup.groups[i].decay ? c.weight_decay : 0.0});
  setup.optimizer = optimizer_registry().get(c.name).make(specs, c);
  return setup;
}

void set_learning_rate(OptimizerSetup& setup, double base_lr) {
  auto& groups = setup.optimizer->param_groups();
  for (size_t i = 0; i < groups.size(); ++i)
    groups[i].options().set_lr(base_lr * setup.groups[i].lr_multiplier);
}

void clear_gradients(OptimizerSetup& setup) {
  for (auto& group : setup.optimizer->param_groups())
    for (auto& p : group.params()) p.mutable_grad() = torch::Tensor();
}

double clip_gradients(OptimizerSetup& setup) {
  if (setup.config.grad_clip > 0)
    return torch::nn::utils::clip_grad_norm_(setup.trainable, setup.config.grad_clip);
  // Still report the norm (a logged metric) without changing the gradients.
  double total = 0.0;
  for (const auto& p : setup.trainable)
    if (p.grad().defined()) total += p.grad().detach().pow(2).sum().item<double>();
  return std::sqrt(total);
}

}  // namespace attnlab
