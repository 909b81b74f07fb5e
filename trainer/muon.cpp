// Muon for hidden matrices and AdamW for the rest (trainer/muon.h; docs/methods.md, "Muon"): the
// update rules op for op as torch.optim.Muon (PyTorch 2.11) and torch::optim::AdamW compute them,
// and the param-group options and per-parameter state through LibTorch's optimizer serializer.
#include "trainer/muon.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <memory>

namespace attnlab {

MuonGroupOptions::MuonGroupOptions(double lr) : lr_(lr) {}

void MuonGroupOptions::serialize(torch::serialize::OutputArchive& archive) const {
  archive.write("algorithm", c10::IValue(algorithm()));
  archive.write("lr", c10::IValue(lr()));
  archive.write("weight_decay", c10::IValue(weight_decay()));
  archive.write("momentum", c10::IValue(momentum()));
  archive.write("nesterov", c10::IValue(nesterov()));
  archive.write("ns_coefficients", c10::IValue(ns_coefficients()));
  archive.write("ns_steps", c10::IValue(ns_steps()));
  archive.write("adjust_lr_fn", c10::IValue(adjust_lr_fn()));
  archive.write("eps", c10::IValue(eps()));
  archive.write("beta1", c10::IValue(beta1()));
  archive.write("beta2", c10::IValue(beta2()));
}

void MuonGroupOptions::serialize(torch::serialize::InputArchive& archive) {
  auto read = [&](const char* key) {
    c10::IValue value;
    archive.read(key, value);
    return value;
  };
  algorithm(read("algorithm").toStringRef());
  lr(read("lr").toDouble());
  weight_decay(read("weight_decay").toDouble());
  momentum(read("momentum").toDouble());
  nesterov(read("nesterov").toBool());
  ns_coefficients(read("ns_coefficients").toDoubleVector());
  ns_steps(read("ns_steps").toInt());
  adjust_lr_fn(read("adjust_lr_fn").toStringRef());
  eps(read("eps").toDouble());
  beta1(read("beta1").toDouble());
  beta2(read("beta2").toDouble());
}

void MuonParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum_buffer);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq);
}

void MuonParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, momentum_buffer);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq);
}

torch::Tensor zeropower_via_newton_schulz(const torch::Tensor& matrix,
                                          const std::vector<double>& ns_coefficients,
                                          int64_t ns_steps, double eps) {
  TORCH_CHECK(matrix.dim() == 2, "Newton–Schulz needs a 2-D matrix, got ", matrix.sizes());
  TORCH_CHECK(ns_coefficients.size() == 3, "Newton–Schulz needs 3 coefficients");
  const double a = ns_coefficients[0], b = ns_coefficients[1], c = ns_coefficients[2];
  const bool tall = matrix.size(0) > matrix.size(1);
  torch::Tensor ortho = matrix.to(torch::kBFloat16);
  if (tall) ortho = ortho.t();
  // Frobenius norm >= spectral norm: the singular values start at most 1.
  ortho.div_(torch::linalg_vector_norm(ortho, 2, c10::nullopt, false, c10::nullopt).clamp(eps));
  for (int64_t i = 0; i < ns_steps; ++i) {
    const torch::Tensor gram = torch::matmul(ortho, ortho.t());
    const torch::Tensor gram_update = torch::addmm(gram, gram, gram, /*beta=*/b, /*alpha=*/c);
    ortho = torch::addmm(ortho, gram_update, ortho, /*beta=*/a);
  }
  return tall ? ortho.t() : ortho;
}

double muon_adjusted_lr(double lr, const std::string& adjust_lr_fn, int64_t rows, int64_t cols) {
  double ratio = 1.0;
  if (adjust_lr_fn == "original")
    ratio = std::sqrt(std::max(1.0, static_cast<double>(rows) / static_cast<double>(cols)));
  else if (adjust_lr_fn == "match_rms_adamw")
    ratio = 0.2 * std::sqrt(static_cast<double>(std::max(rows, cols)));
  return lr * ratio;
}

Muon::Muon(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
           MuonGroupOptions defaults)
    : Optimizer(param_groups, std::make_unique<MuonGroupOptions>(defaults)) {
  for (const auto& group : param_groups_) {
    const auto& options = static_cast<const MuonGroupOptions&>(group.options());
    TORCH_CHECK(options.algorithm() == "muon" || options.algorithm() == "adamw",
                "Muon param group algorithm must be muon or adamw, got ", options.algorithm());
    TORCH_CHECK(options.lr() >= 0, "Invalid learning rate: ", options.lr());
    TORCH_CHECK(options.weight_decay() >= 0, "Invalid weight decay: ", options.weight_decay());
    if (options.algorithm() != "muon") continue;
    TORCH_CHECK(options.adjust_lr_fn() == "original" || options.adjust_lr_fn() == "match_rms_adamw",
                "Muon adjust_lr_fn must be original or match_rms_adamw, got ",
                options.adjust_lr_fn());
    for (const auto& p : group.params())
      TORCH_CHECK(p.dim() == 2, "Muon only updates 2-D parameters, got one of size ", p.sizes());
  }
}

torch::Tensor Muon::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const MuonGroupOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      TORCH_CHECK(!p.grad().is_sparse(), "Muon does not support sparse gradients");
      if (options.algorithm() == "muon")
        muon_update(p, options);
      else
        adamw_update(p, options);
    }
  }
  return loss;
}

// torch.optim.Muon's _single_tensor_muon for one parameter.
void Muon::muon_update(torch::Tensor& param, const MuonGroupOptions& options) {
  const torch::Tensor& grad = param.grad();
  auto& slot = state_[param.unsafeGetTensorImpl()];
  if (!slot) {
    auto state = std::make_unique<MuonParamState>();
    state->momentum_buffer(torch::zeros_like(grad, torch::MemoryFormat::Preserve));
    slot = std::move(state);
  }
  torch::Tensor& buffer = static_cast<MuonParamState&>(*slot).momentum_buffer();
  const double momentum = options.momentum();
  buffer.lerp_(grad, 1 - momentum);  // B <- momentum B + (1 - momentum) G
  const torch::Tensor update = options.nesterov() ? grad.lerp(buffer, momentum) : buffer;
  const torch::Tensor orthogonal = zeropower_via_newton_schulz(update, options.ns_coefficients(),
                                                               options.ns_steps(), options.eps());
  const double lr = options.lr();
  const double adjusted_lr =
      muon_adjusted_lr(lr, options.adjust_lr_fn(), param.size(0), param.size(1));
  // Decoupled weight decay with the unadjusted lr; multiplying by exactly 1 is skipped.
  if (options.weight_decay() != 0) param.mul_(1 - lr * options.weight_decay());
  param.add_(orthogonal, -adjusted_lr);
}

// torch::optim::AdamW::step for one parameter (amsgrad off).
void Muon::adamw_update(torch::Tensor& param, const MuonGroupOptions& options) {
  const torch::Tensor& grad = param.grad();
  if (options.weight_decay() != 0) param.mul_(1 - options.lr() * options.weight_decay());
  auto& slot = state_[param.unsafeGetTensorImpl()];
  if (!slot) {
    auto state = std::make_unique<MuonParamState>();
    state->exp_avg(torch::zeros_like(param, torch::MemoryFormat::Preserve));
    state->exp_avg_sq(torch::zeros_like(param, torch::MemoryFormat::Preserve));
    slot = std::move(state);
  }
  auto& state = static_cast<MuonParamState&>(*slot);
  state.step(state.step() + 1);
  const double beta1 = options.beta1(), beta2 = options.beta2();
  const double bias_correction1 = 1 - std::pow(beta1, state.step());
  const double bias_correction2 = 1 - std::pow(beta2, state.step());
  state.exp_avg().mul_(beta1).add_(grad, 1 - beta1);
  state.exp_avg_sq().mul_(beta2).addcmul_(grad, grad, 1 - beta2);
  const torch::Tensor denom =
      (state.exp_avg_sq().sqrt() / std::sqrt(bias_correction2)).add_(options.eps());
  param.addcdiv_(state.exp_avg(), denom, -(options.lr() / bias_correction1));
}

void Muon::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<MuonParamState, MuonGroupOptions>(archive, *this);
}

void Muon::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<MuonParamState, MuonGroupOptions>(archive, *this);
}

}  // namespace attnlab
