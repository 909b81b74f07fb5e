// See nonfinite_guard.h.
#include "trainer/nonfinite_guard.h"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <unordered_map>

#include "common/error.h"
#include "trainer/muon.h"

namespace attnlab {

NonFinitePolicy NonFiniteOptions::policy() const {
  if (on_nonfinite_ == "skip") return NonFinitePolicy::kSkip;
  if (on_nonfinite_ == "rollback") return NonFinitePolicy::kRollback;
  return NonFinitePolicy::kHalt;  // the bound value is one of the three
}

std::string policy_name(NonFinitePolicy policy) {
  switch (policy) {
    case NonFinitePolicy::kHalt:
      return "halt";
    case NonFinitePolicy::kSkip:
      return "skip";
    case NonFinitePolicy::kRollback:
      return "rollback";
  }
  return "halt";
}

std::string first_nonfinite(const NamedTensorList& tensors) {
  std::vector<torch::Tensor> sums;
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : tensors)
    if (tensor.defined() && tensor.is_floating_point() && tensor.numel() > 0) {
      auto sum = tensor.detach().sum(torch::kFloat64);
      // One device for the stack (in practice every tensor already is on the first one's).
      sums.push_back(sums.empty() ? sum : sum.to(sums.front().device()));
    }
  if (sums.empty() || std::isfinite(torch::stack(sums).sum().item<double>())) return "";
  for (const auto& [name, tensor] : tensors)
    if (tensor.defined() && tensor.is_floating_point() && tensor.numel() > 0 &&
        !tensor.detach().isfinite().all().item<bool>())
      return name;
  return "";
}

NamedTensorList named_parameters_and_buffers(const torch::nn::Module& module) {
  NamedTensorList out;
  for (const auto& item : module.named_parameters(true)) out.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers(true)) out.emplace_back(item.key(), item.value());
  return out;
}

NamedTensorList named_gradients(const torch::nn::Module& module) {
  NamedTensorList out;
  for (const auto& item : module.named_parameters(true))
    if (item.value().grad().defined()) out.emplace_back(item.key(), item.value().grad());
  return out;
}

NamedTensorList named_optimizer_state(const torch::nn::Module& model,
                                      const torch::optim::Optimizer& optimizer) {
  std::unordered_map<const void*, std::string> names;
  for (const auto& item : model.named_parameters(true))
    names[item.value().unsafeGetTensorImpl()] = item.key();
  NamedTensorList out;
  const auto& states = optimizer.state();
  for (const auto& group : optimizer.param_groups()) {
    for (const auto& parameter : group.params()) {
      const void* key = parameter.unsafeGetTensorImpl();
      auto found = states.find(const_cast<void*>(key));
      if (found == states.end()) continue;
      const auto name_it = names.find(key);
      const std::string name = name_it == names.end() ? "?" : name_it->second;
      auto add = [&](const char* what, const torch::Tensor& tensor) {
        if (tensor.defined())
          out.emplace_back(std::string("optimizer.") + what + "[" + name + "]", tensor);
      };
      if (const auto* adamw =
              dynamic_cast<const torch::optim::AdamWParamState*>(found->second.get())) {
        add("exp_avg", adamw->exp_avg());
        add("exp_avg_sq", adamw->exp_avg_sq());
        add("max_exp_avg_sq", adamw->max_exp_avg_sq());
      } else if (const auto* adam =
                     dynamic_cast<const torch::optim::AdamParamState*>(found->second.get())) {
        add("exp_avg", adam->exp_avg());
        add("exp_avg_sq", adam->exp_avg_sq());
        add("max_exp_avg_sq", adam->max_exp_avg_sq());
      } else if (const auto* sgd =
                     dynamic_cast<const torch::optim::SGDParamState*>(found->second.get())) {
        add("momentum_buffer", sgd->momentum_buffer());
      } else if (const auto* muon = dynamic_cast<const MuonParamState*>(found->second.get())) {
        add("momentum_buffer", muon->momentum_buffer());
        add("exp_avg", muon->exp_avg());
        add("exp_avg_sq", muon->exp_avg_sq());
      }
    }
  }
  return out;
}

NamedTensorList named_parameters_and_moments(const torch::nn::Module& model,
                                             const torch::optim::Optimizer& optimizer) {
  NamedTensorList tensors = named_parameters_and_buffers(model);
  NamedTensorList moments = named_optimizer_state(model, optimizer);
  tensors.insert(tensors.end(), moments.begin(), moments.end());
  return tensors;
}

void check_finite_weights(const torch::nn::Module& model, const std::string& source) {
  const std::string bad = first_nonfinite(named_parameters_and_buffers(model));
  check_user(bad.empty(), "checkpoint '" + source + "' holds non-finite weights (first: '" + bad +
                              "'): it was saved by a diverged run; use an earlier checkpoint "
                              "(checkpoint=<path>)");
}

double SpikeDetector::zscore(double value) const {
  if (window_ <= 0 || static_cast<int64_t>(values_.size()) < window_) return 0.0;
  double mean = 0.0;
  for (double v : values_) mean += v;
  mean /= static_cast<double>(values_.size());
  double variance = 0.0;
  for (double v : values_) variance += (v - mean) * (v - mean);
  variance /= static_cast<double>(values_.size());
  const double deviation = std::sqrt(variance);
  if (!(deviation > 0.0)) return 0.0;
  return (value - mean) / deviation;
}

void SpikeDetector::push(double value) {
  if (window_ <= 0 || !std::isfinite(value)) return;
  values_.push_back(value);
  while (static_cast<int64_t>(values_.size()) > window_) values_.pop_front();
}

std::string SpikeDetector::serialize() const {
  std::string out;
  char buffer[32];
  for (double v : values_) {
    std::snprintf(buffer, sizeof(buffer), "%.17g", v);
    out += (out.empty() ? "" : " ") + std::string(buffer);
  }
  return out;
}

void SpikeDetector::restore(const std::string& text) {
  values_.clear();
  std::istringstream in(text);
  std::string token;
  while (in >> token) {
    try {
      push(std::stod(token));
    } catch (const std::exception&) {
      values_.clear();  // an unreadable window only delays detection; it never stops a resume
      return;
    }
  }
}

}  // namespace attnlab
