// See grad_early_stop.h.
#include "trainer/grad_early_stop.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <sstream>

#include "common/config_access.h"
#include "common/error.h"
#include "common/glob.h"
#include "config/options.h"

namespace attnlab {
namespace {

// "a=1;b=2" <-> map.
std::string join_counts(const std::map<std::string, int64_t>& values) {
  std::string out;
  for (const auto& [name, value] : values)
    out += (out.empty() ? "" : ";") + name + "=" + std::to_string(value);
  return out;
}

std::map<std::string, int64_t> split_counts(const std::string& text, const std::string& key) {
  std::map<std::string, int64_t> out;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ';');) {
    const size_t eq = item.rfind('=');
    check_user(eq != std::string::npos && eq > 0,
               "checkpoint entry '" + key + "' is malformed: '" + item + "'");
    try {
      out[item.substr(0, eq)] = std::stoll(item.substr(eq + 1));
    } catch (const std::exception&) {
      throw UserError("checkpoint entry '" + key + "' is malformed: '" + item + "'");
    }
  }
  return out;
}

}  // namespace

template <class ConfigTree>
GradEarlyStopOptions GradEarlyStopOptions::from_config(const ConfigTree& config) {
  return config::bind<GradEarlyStopOptions>(cfg::find(config, "trainer.grades"), "trainer.grades");
}

template GradEarlyStopOptions GradEarlyStopOptions::from_config(const YAML::Node&);

GradEarlyStop::GradEarlyStop(const GradEarlyStopOptions& options,
                             const std::vector<std::pair<std::string, torch::Tensor>>& model_params,
                             int64_t max_steps, bool skip_backward)
    : options_(options),
      grace_steps_(static_cast<int64_t>(
          std::ceil(options.grace_fraction() * static_cast<double>(max_steps)))),
      skip_backward_(skip_backward) {
  if (!options_.enabled()) return;
  for (const auto& [name, param] : model_params) {
    if (param.dim() != 2 || !param.requires_grad()) continue;
    for (const auto& pattern : options_.params()) {
      if (glob_match(pattern, name)) {
        monitored_.emplace_back(name, param);
        break;
      }
    }
  }
  check_user(!monitored_.empty(),
             "trainer.grades: no trainable 2-D parameter matches trainer.grades.params");
}

std::vector<std::string> GradEarlyStop::observe(int64_t step) {
  std::vector<std::string> newly;
  if (!options_.enabled()) return newly;
  torch::NoGradGuard no_grad;
  for (auto& [name, param] : monitored_) {
    if (frozen_.count(name)) {
      param.mutable_grad() = torch::Tensor();  // AdamW skips a parameter without a gradient
      continue;
    }
    if (!param.grad().defined()) continue;
    const double metric = param.grad().abs().mean().item<double>();
    below_[name] = metric < options_.tau() ? below_[name] + 1 : 0;
    if (step > grace_steps_ && below_[name] >= options_.patience()) {
      frozen_[name] = step;
      below_.erase(name);
      newly.push_back(name);
      freeze(param);
    }
  }
  return newly;
}

void GradEarlyStop::freeze(torch::Tensor& param) {
  param.mutable_grad() = torch::Tensor();
  if (skip_backward_) param.requires_grad_(false);
}

void GradEarlyStop::save(std::map<std::string, std::string>& extra) const {
  if (!options_.enabled()) return;
  extra["grades.frozen"] = join_counts(frozen_);
  extra["grades.below"] = join_counts(below_);
}

void GradEarlyStop::load(const std::map<std::string, std::string>& extra) {
  if (!options_.enabled()) return;
  const auto frozen = extra.find("grades.frozen");
  const auto below = extra.find("grades.below");
  frozen_ = frozen == extra.end() ? std::map<std::string, int64_t>{}
                                  : split_counts(frozen->second, "grades.frozen");
  below_ = below == extra.end() ? std::map<std::string, int64_t>{}
                                : split_counts(below->second, "grades.below");
  // A rollback may restore fewer frozen matrices than are frozen now.
  for (auto& [name, param] : monitored_) {
    if (frozen_.count(name))
      freeze(param);
    else if (skip_backward_)
      param.requires_grad_(true);
  }
}

}  // namespace attnlab
