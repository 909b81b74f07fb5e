// LoRA adapters carried by a torch::nn::Linear; see lora.h.
#include "modules/lora.h"

#include <cmath>
#include <stdexcept>

#include "common/error.h"

namespace attnlab {

double lora_scale(const LoraAdapterOptions& options) {
  const double r = static_cast<double>(options.r);
  return options.use_rslora ? options.alpha / std::sqrt(r) : options.alpha / r;
}

void attach_lora(torch::nn::LinearImpl& linear, const LoraAdapterOptions& options,
                 at::Generator generator) {
  if (has_lora(linear)) throw std::logic_error("attach_lora: the Linear already has an adapter");
  const int64_t in = linear.options.in_features(), out = linear.options.out_features();
  const auto tensor_options = linear.weight.options();
  torch::NoGradGuard no_grad;
  // kaiming_uniform_(a = sqrt(5)) of a [r, in] weight: U(-1/sqrt(in), 1/sqrt(in)), drawn from the
  // caller's generator so the draw never depends on (or moves) the global RNG.
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  torch::Tensor a = torch::empty({options.r, in}, torch::kFloat32)
                        .uniform_(-bound, bound, generator)
                        .to(tensor_options);
  auto lora_a = torch::nn::Linear(torch::nn::LinearOptions(in, options.r).bias(false));
  auto lora_b = torch::nn::Linear(torch::nn::LinearOptions(options.r, out).bias(false));
  lora_a->weight.set_data(a);
  lora_b->weight.set_data(torch::zeros({out, options.r}, tensor_options));
  linear.register_module("lora_A", lora_a);
  linear.register_module("lora_B", lora_b);
  linear.register_module("lora", LoraPath(lora_scale(options), options.dropout));
  linear.weight.set_requires_grad(false);
  if (linear.bias.defined()) linear.bias.set_requires_grad(false);
}

bool has_lora(const torch::nn::LinearImpl& linear) {
  return linear.named_children().contains("lora");
}

torch::Tensor lora_delta(const torch::nn::LinearImpl& linear, const torch::Tensor& x) {
  const auto children = linear.named_children();
  if (children.is_empty() || !children.contains("lora")) return {};
  const auto& path = *children["lora"]->as<LoraPathImpl>();
  const auto& a = children["lora_A"]->as<torch::nn::LinearImpl>()->weight;
  const auto& b = children["lora_B"]->as<torch::nn::LinearImpl>()->weight;
  torch::Tensor h = x;
  if (path.dropout > 0 && path.is_training()) h = torch::dropout(h, path.dropout, true);
  return torch::linear(torch::linear(h, a), b) * path.scale;
}

torch::Tensor lora_linear(const torch::nn::Linear& linear, const torch::Tensor& x) {
  // LinearImpl::forward's computation (it is not const).
  torch::Tensor y = torch::linear(x, linear->weight, linear->bias);
  const torch::Tensor delta = lora_delta(*linear, x);
  return delta.defined() ? y + delta : y;
}

std::vector<std::string> lora_module_names(const StateDict& weights) {
  const std::string suffix = ".lora_A.weight";
  std::vector<std::string> out;
  for (const auto& item : weights) {
    const std::string& name = item.first;
    if (name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(name.substr(0, name.size() - suffix.size()));
  }
  return out;
}

StateDict merge_lora_weights(const StateDict& weights, const LoraOptions& options) {
  StateDict out = weights;
  const double scale = lora_scale(options.adapter());
  for (const std::string& module : lora_module_names(weights)) {
    const auto a = weights.find(module + ".lora_A.weight"),
               b = weights.find(module + ".lora_B.weight"), w = weights.find(module + ".weight");
    check_user(b != weights.end() && w != weights.end(),
               "LoRA weights of " + module + " are incomplete (lora_B or the base weight missing)");
    const torch::Tensor delta =
        torch::matmul(b->second.to(torch::kFloat64), a->second.to(torch::kFloat64)) * scale;
    out[module + ".weight"] = (w->second.to(torch::kFloat64) + delta).to(w->second.scalar_type());
    out.erase(module + ".lora_A.weight");
    out.erase(module + ".lora_B.weight");
  }
  return out;
}

}  // namespace attnlab
