// make_optimizer: resolves freeze / lr_multipliers patterns against parameter names, partitions the
// trainable parameters into (decay, multiplier) groups and builds the optimizer that optim.name
// names (optimizer_registry: torch::optim::AdamW or SGD) over them.
#include "trainer/optimizer.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <map>
#include <sstream>

#include "common/config_access.h"
#include "common/error.h"
#include "common/glob.h"
#include "config/options.h"

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

double base_lr(const OptimizerOptions& options) {
  return std::visit([](const auto& o) { return o.lr(); }, options);
}

double weight_decay(const OptimizerOptions& options) {
  return std::visit([](const auto& o) { return o.weight_decay(); }, options);
}

double grad_clip(const OptimizerOptions& options) {
  return std::visit([](const auto& o) { return o.grad_clip(); }, options);
}

namespace {

std::unique_ptr<torch::optim::Optimizer> make_adamw(const std::vector<ParamGroupSpec>& groups,
                                                    const AdamWOptions& o) {
  const auto betas = std::make_tuple(o.betas()[0], o.betas()[1]);
  std::vector<torch::optim::OptimizerParamGroup> torch_groups;
  for (const auto& group : groups) {
    auto options = std::make_unique<torch::optim::AdamWOptions>(group.lr);
    options->betas(betas).eps(o.eps()).weight_decay(group.weight_decay);
    torch_groups.emplace_back(group.params, std::move(options));
  }
  torch::optim::AdamWOptions defaults(o.lr());
  defaults.betas(betas).eps(o.eps()).weight_decay(o.weight_decay());
  return std::make_unique<torch::optim::AdamW>(std::move(torch_groups), defaults);
}

std::unique_ptr<torch::optim::Optimizer> make_sgd(const std::vector<ParamGroupSpec>& groups,
                                                  const SGDOptions& o) {
  std::vector<torch::optim::OptimizerParamGroup> torch_groups;
  for (const auto& group : groups) {
    auto options = std::make_unique<torch::optim::SGDOptions>(group.lr);
    options->momentum(o.momentum()).nesterov(o.nesterov()).weight_decay(group.weight_decay);
    torch_groups.emplace_back(group.params, std::move(options));
  }
  torch::optim::SGDOptions defaults(o.lr());
  defaults.momentum(o.momentum()).nesterov(o.nesterov()).weight_decay(o.weight_decay());
  return std::make_unique<torch::optim::SGD>(std::move(torch_groups), defaults);
}

// A registry entry from a factory of one options type.
template <class Options>
OptimizerSpec entry(std::unique_ptr<torch::optim::Optimizer> (*make)(
    const std::vector<ParamGroupSpec>&, const Options&)) {
  return {Options{},
          [make](const std::vector<ParamGroupSpec>& groups, const OptimizerOptions& options) {
            return make(groups, std::get<Options>(options));
          }};
}

}  // namespace

Registry<OptimizerSpec>& optimizer_registry() {
  static Registry<OptimizerSpec> registry("optimizer (optim.name)",
                                          {{"adamw", entry(make_adamw)}, {"sgd", entry(make_sgd)}});
  return registry;
}

namespace {

// The registry entry whose options type `options` holds.
const OptimizerSpec& optimizer_entry(const OptimizerOptions& options) {
  for (const auto& name : optimizer_registry().names()) {
    const OptimizerSpec& spec = optimizer_registry().get(name);
    if (spec.defaults.index() == options.index()) return spec;
  }
  throw std::logic_error("optimizer options without a registry entry");
}

}  // namespace

template <class ConfigTree>
OptimizerOptions optimizer_options(const ConfigTree& config) {
  const YAML::Node group = cfg::find(config, "optim");
  // No optim.name (a config without the optim group): the registry's default entry.
  const std::string name =
      cfg::has(config, "optim.name") ? cfg::get<std::string>(config, "optim.name") : "adamw";
  const config::BindScope scope{"optim '" + name + "'", {"name"}};
  OptimizerOptions options = std::visit(
      [&](const auto& defaults) -> OptimizerOptions {
        return config::bind<std::decay_t<decltype(defaults)>>(group, "optim", scope);
      },
      optimizer_registry().get(name).defaults);
  if (const auto* sgd = std::get_if<SGDOptions>(&options))
    check_user(!sgd->nesterov() || sgd->momentum() > 0,
               "optim.nesterov: Nesterov momentum needs optim.momentum > 0");
  return options;
}

template <class ConfigTree>
ParameterRules parameter_rules(const ConfigTree& config) {
  ParameterRules rules;
  if (cfg::has(config, "freeze"))
    rules.freeze = cfg::get<std::vector<std::string>>(config, "freeze");
  // Keep the order the user wrote (yaml-cpp preserves map order) so "first match wins" is defined.
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
      rules.lr_multipliers.emplace_back(pattern, m);
    }
  }
  return rules;
}

template <class ConfigTree>
OptimizerSetup make_optimizer(torch::nn::Module& model, const ConfigTree& config) {
  return make_optimizer(model, optimizer_options(config), parameter_rules(config));
}

template OptimizerOptions optimizer_options(const YAML::Node&);
template ParameterRules parameter_rules(const YAML::Node&);
template OptimizerSetup make_optimizer(torch::nn::Module&, const YAML::Node&);

bool is_no_decay(const std::string& name, const torch::Tensor& parameter) {
  return parameter.dim() < 2 || name.find("embed") != std::string::npos;
}

OptimizerSetup make_optimizer(torch::nn::Module& model, const OptimizerOptions& options,
                              const ParameterRules& rules) {
  OptimizerSetup setup;
  setup.options = options;

  auto named = model.named_parameters(/*recurse=*/true);
  std::vector<std::string> names;
  for (const auto& item : named) names.push_back(item.key());
  const std::vector<std::string>& freeze_patterns = rules.freeze;
  for (const auto& pattern : freeze_patterns) check_matches("freeze", pattern, names);
  const auto& multipliers = rules.lr_multipliers;
  for (const auto& [pattern, m] : multipliers) check_matches("lr_multipliers", pattern, names);

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

  std::vector<ParamGroupSpec> specs;
  for (size_t i = 0; i < setup.groups.size(); ++i)
    specs.push_back({group_params[i], base_lr(options) * setup.groups[i].lr_multiplier,
                     setup.groups[i].decay ? weight_decay(options) : 0.0});
  setup.optimizer = optimizer_entry(options).make(specs, options);
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
  if (grad_clip(setup.options) > 0)
    return torch::nn::utils::clip_grad_norm_(setup.trainable, grad_clip(setup.options));
  // Still report the norm (a logged metric) without changing the gradients.
  double total = 0.0;
  for (const auto& p : setup.trainable)
    if (p.grad().defined()) total += p.grad().detach().pow(2).sum().item<double>();
  return std::sqrt(total);
}

}  // namespace attnlab
