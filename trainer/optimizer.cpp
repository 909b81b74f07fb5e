// make_optimizer: resolves freeze / lr_multipliers patterns against parameter names, partitions the
// trainable parameters into (rule, decay, multiplier) groups and builds the optimizer that
// optim.name names (optimizer_registry: torch::optim::AdamW or SGD, or attnlab's Muon) over them.
#include "trainer/optimizer.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <map>
#include <sstream>
#include <tuple>
#include <type_traits>

#include "common/config_access.h"
#include "common/error.h"
#include "common/glob.h"
#include "config/options.h"
#include "trainer/muon.h"

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
  return std::visit(
      [](const auto& o) {
        if constexpr (std::is_same_v<std::decay_t<decltype(o)>, MuonOptions>)
          return o.muon().lr();
        else
          return o.lr();
      },
      options);
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

std::unique_ptr<torch::optim::Optimizer> make_muon(const std::vector<ParamGroupSpec>& groups,
                                                   const MuonOptions& o) {
  const MuonMatrixOptions& matrices = o.muon();
  const AdamWUpdateOptions& others = o.adamw();
  std::vector<torch::optim::OptimizerParamGroup> torch_groups;
  for (const auto& group : groups) {
    auto options = std::make_unique<MuonGroupOptions>(group.lr);
    options->weight_decay(group.weight_decay)
        .momentum(matrices.momentum())
        .nesterov(matrices.nesterov())
        .ns_coefficients(matrices.ns_coefficients())
        .ns_steps(matrices.ns_steps())
        .adjust_lr_fn(matrices.adjust_lr_fn())
        .beta1(others.betas()[0])
        .beta2(others.betas()[1]);
    if (group.rule == UpdateRule::kMuon)
      options->algorithm("muon").eps(matrices.eps());
    else
      options->algorithm("adamw").eps(others.eps());
    torch_groups.emplace_back(group.params, std::move(options));
  }
  return std::make_unique<Muon>(std::move(torch_groups), MuonGroupOptions(matrices.lr()));
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
  static Registry<OptimizerSpec> registry(
      "optimizer (optim.name)",
      {{"adamw", entry(make_adamw)}, {"sgd", entry(make_sgd)}, {"muon", entry(make_muon)}});
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

bool is_muon_matrix(const std::string& name, const torch::Tensor& parameter) {
  const std::string top_module = name.substr(0, name.find('.'));
  return parameter.dim() == 2 && !is_no_decay(name, parameter) && top_module != "lm_head" &&
         top_module != "classifier";
}

namespace {

// A group kind's base learning rate and weight decay (before the decay/no-decay split).
struct RuleSettings {
  double lr = 0.0;
  double weight_decay = 0.0;
};

RuleSettings rule_settings(const OptimizerOptions& options, UpdateRule rule) {
  return std::visit(
      [rule](const auto& o) -> RuleSettings {
        if constexpr (std::is_same_v<std::decay_t<decltype(o)>, MuonOptions>) {
          if (rule == UpdateRule::kMuon) return {o.muon().lr(), o.muon().weight_decay()};
          return {o.adamw().lr(), o.adamw().weight_decay()};
        } else {
          return {o.lr(), o.weight_decay()};
        }
      },
      options);
}

std::string rule_label(UpdateRule rule, bool decay) {
  switch (rule) {
    case UpdateRule::kMuon:
      return "muon";
    case UpdateRule::kAdamW:
      return std::string("adamw ") + (decay ? "decay" : "no_decay");
    case UpdateRule::kDefault:
      break;
  }
  return decay ? "decay" : "no_decay";
}

}  // namespace

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

  // Group key: (rule, decay, multiplier); groups appear in order of their first parameter.
  const bool split_by_rule = std::holds_alternative<MuonOptions>(options);
  std::map<std::tuple<UpdateRule, bool, double>, size_t> group_index;
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
    const UpdateRule rule = !split_by_rule                ? UpdateRule::kDefault
                            : is_muon_matrix(name, param) ? UpdateRule::kMuon
                                                          : UpdateRule::kAdamW;
    auto key = std::make_tuple(rule, decay, multiplier);
    auto it = group_index.find(key);
    if (it == group_index.end()) {
      it = group_index.emplace(key, setup.groups.size()).first;
      ParamGroupInfo info;
      info.decay = decay;
      info.lr_multiplier = multiplier;
      info.rule = rule;
      info.base_lr = rule_settings(options, rule).lr;
      info.label = rule_label(rule, decay) +
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
  for (size_t i = 0; i < setup.groups.size(); ++i) {
    const ParamGroupInfo& group = setup.groups[i];
    specs.push_back({group_params[i], group.base_lr * group.lr_multiplier,
                     group.decay ? rule_settings(options, group.rule).weight_decay : 0.0,
                     group.rule});
  }
  setup.optimizer = optimizer_entry(options).make(specs, options);
  return setup;
}

void set_learning_rate(OptimizerSetup& setup, double lr_factor, double lr_scale) {
  auto& groups = setup.optimizer->param_groups();
  for (size_t i = 0; i < groups.size(); ++i)
    groups[i].options().set_lr(setup.groups[i].base_lr * lr_factor * lr_scale *
                               setup.groups[i].lr_multiplier);
}

std::string describe_param_groups(const OptimizerSetup& setup) {
  std::ostringstream out;
  for (size_t i = 0; i < setup.groups.size(); ++i) {
    const ParamGroupInfo& group = setup.groups[i];
    out << "  " << group.label << ": lr " << group.base_lr * group.lr_multiplier
        << ", weight_decay "
        << (group.decay ? rule_settings(setup.options, group.rule).weight_decay : 0.0) << ", "
        << group.names.size() << " parameters: ";
    for (size_t n = 0; n < group.names.size(); ++n) out << (n ? ", " : "") << group.names[n];
    out << "\n";
  }
  return out.str();
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
