// Helpers for the attention-family tests: build a module by registry name with `attention.*`
// params, a causal context, a finite-difference gradient check in float64, and running the
// Python references in scripts/ref/ on `attnlab probe` output.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <string>

#include "modules/attention.h"
#include "modules/attention_entry.h"
#include "modules/masks.h"
#include "tests/support/python.h"

namespace attnlab::attention_test {

inline std::shared_ptr<AttentionImpl> make(const std::string& name, int64_t d_model, int64_t heads,
                                           const YAML::Node& params, int64_t kv_heads = 0,
                                           int64_t layer = 0,
                                           AttentionBackend backend = AttentionBackend::kAuto) {
  AttentionOptions options;
  options.backend = backend;
  options.d_model = d_model;
  options.n_heads = heads;
  options.n_kv_heads = kv_heads;
  options.layer_index = layer;
  options.n_layers = layer + 1;
  options.module_options = bind_attention_options(name, params);
  return make_attention(name, options);
}

inline AttentionContext context(int64_t length, const std::string& mask = "causal",
                                int64_t block = 0, int64_t start = 0) {
  AttentionContext c;
  c.mask.kind = parse_mask_kind(mask);
  c.mask.block_size = block;
  c.positions = torch::arange(start, start + length);
  return c;
}

// Scalar objective with a fixed random projection of y (so every output entry matters) plus the
// aux losses: what the gradient check differentiates.
inline torch::Tensor objective(AttentionImpl& module, const torch::Tensor& x,
                               const AttentionContext& ctx, const torch::Tensor& weights) {
  AttentionOutput out = module.forward(x, ctx);
  auto loss = (out.y * weights).sum();
  for (const auto& [name, value] : out.aux_losses) loss = loss + value;
  return loss;
}

// Compares autograd gradients (w.r.t. x and every parameter) with central finite differences
// in float64, on every x entry and up to `per_tensor` random entries of each parameter.
// Returns the worst absolute error (the caller asserts a bound).
inline double gradient_check_error(AttentionImpl& module, const torch::Tensor& x_in,
                                   const AttentionContext& ctx, int64_t per_tensor = 24) {
  module.to(torch::kDouble);
  auto x = x_in.to(torch::kDouble).clone().requires_grad_(true);
  torch::manual_seed(123);
  auto weights = torch::randn_like(module.forward(x, ctx).y);
  module.zero_grad();
  objective(module, x, ctx, weights).backward();
  std::vector<std::pair<torch::Tensor, torch::Tensor>> targets{{x, x.grad().clone()}};
  for (auto& p : module.parameters())
    targets.push_back({p, p.grad().defined() ? p.grad().clone() : torch::zeros_like(p)});
  const double eps = 1e-6;
  double worst = 0.0;
  torch::NoGradGuard no_grad;
  for (auto& [tensor, grad] : targets) {
    auto flat = tensor.view(-1);
    const int64_t n = flat.numel();
    auto picks = tensor.is_same(x) || n <= per_tensor ? torch::arange(n)
                                                      : torch::randperm(n).narrow(0, 0, per_tensor);
    auto grad_flat = grad.reshape(-1);
    for (int64_t i = 0; i < picks.numel(); ++i) {
      const int64_t at = picks[i].item<int64_t>();
      const double saved = flat[at].item<double>();
      flat[at] = saved + eps;
      const double up = objective(module, x, ctx, weights).item<double>();
      flat[at] = saved - eps;
      const double down = objective(module, x, ctx, weights).item<double>();
      flat[at] = saved;
      const double numeric = (up - down) / (2 * eps);
      worst = std::max(worst, std::abs(numeric - grad_flat[at].item<double>()));
    }
  }
  return worst;
}

inline std::string scratch(const std::string& name) {
  return std::string(ATTNLAB_BINARY_DIR) + "/attn_test_" + name + "_" +
         std::to_string(static_cast<long>(::getpid())) + ".pt";
}

// Runs scripts/ref/<script> on a probe file; returns its exit status (0 = parity).
inline int run_reference(const std::string& script, const std::string& probe_path,
                         const std::string& args) {
  const std::string cmd = "cd " + std::string(ATTNLAB_SOURCE_DIR) + "/scripts/ref && '" +
                          ::attnlab::testing::project_python() + "' " + script + " " + probe_path +
                          " " + args;
  return std::system(cmd.c_str());
}

}  // namespace attnlab::attention_test
