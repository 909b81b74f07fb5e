// Muon (momentum orthogonalised by Newton–Schulz) for the hidden weight matrices and AdamW for
// every other parameter, as one LibTorch optimizer: the optimizer behind `optim=muon`
// (docs/methods.md, "Muon"). Muon replaces each 2-D hidden weight's momentum update by an
// approximately orthogonal matrix of the same shape — the update's singular values pushed towards
// one by a quintic Newton–Schulz iteration — so every direction of the matrix moves at a similar
// rate; embeddings, the output head, norms, biases and other 1-D parameters have no such matrix
// structure to exploit and keep AdamW, as the method's authors prescribe.
//
// Why one optimizer rather than two: a run has one optimizer (OptimizerSetup::optimizer) whose
// param groups line up with ParamGroupInfo, whose state the checkpoint saves and loads through
// LibTorch's serializer and whose name a resumed run is checked against. Each group carries
// MuonGroupOptions, whose `algorithm` says which update it receives.
//
// Exactness: a Muon group's step is torch.optim.Muon's (PyTorch 2.11, torch/optim/_muon.py) op for
// op — momentum and Nesterov as lerps, Newton–Schulz in bfloat16 on the wide orientation, the
// learning-rate adjustment by shape, decoupled weight decay with the unadjusted lr — and an AdamW
// group's step is torch::optim::AdamW's, so tests compare both bitwise or to 1e-6.
#pragma once

#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>

#include <cstdint>
#include <string>
#include <vector>

namespace attnlab {

// One param group's options: which update rule applies and its hyper-parameters. Fields of the
// other rule are kept (and saved) but unused.
struct MuonGroupOptions : public torch::optim::OptimizerCloneableOptions<MuonGroupOptions> {
  explicit MuonGroupOptions(double lr = 0.02);
  TORCH_ARG(std::string, algorithm) = "muon";  // "muon" | "adamw"
  TORCH_ARG(double, lr) = 0.02;
  TORCH_ARG(double, weight_decay) = 0.0;
  // algorithm=muon (torch.optim.Muon's arguments and defaults).
  TORCH_ARG(double, momentum) = 0.95;
  TORCH_ARG(bool, nesterov) = true;
  TORCH_ARG(std::vector<double>, ns_coefficients) = std::vector<double>{3.4445, -4.775, 2.0315};
  TORCH_ARG(int64_t, ns_steps) = 5;
  TORCH_ARG(std::string, adjust_lr_fn) = "original";  // "original" | "match_rms_adamw"
  // Muon: the floor of the norm the Newton–Schulz input is divided by; AdamW: added to the
  // denominator.
  TORCH_ARG(double, eps) = 1e-7;
  // algorithm=adamw.
  TORCH_ARG(double, beta1) = 0.9;
  TORCH_ARG(double, beta2) = 0.95;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
};

// One parameter's state: the momentum buffer (Muon) or the step count and both moments (AdamW).
struct MuonParamState : public torch::optim::OptimizerCloneableParamState<MuonParamState> {
  TORCH_ARG(torch::Tensor, momentum_buffer);
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, exp_avg);
  TORCH_ARG(torch::Tensor, exp_avg_sq);

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

// torch.optim.Muon's _zeropower_via_newtonschulz: `ns_steps` quintic iterations
// X <- a X + (b A + c A^2) X with A = X X^T, in bfloat16, from X = G / max(||G||_F, eps) taken in
// its wide orientation (transposed when G has more rows than columns). Returns bfloat16.
torch::Tensor zeropower_via_newton_schulz(const torch::Tensor& matrix,
                                          const std::vector<double>& ns_coefficients,
                                          int64_t ns_steps, double eps);

// torch.optim.Muon's _adjust_lr: lr * sqrt(max(1, rows / cols)) ("original") or
// lr * 0.2 * sqrt(max(rows, cols)) ("match_rms_adamw").
double muon_adjusted_lr(double lr, const std::string& adjust_lr_fn, int64_t rows, int64_t cols);

class Muon : public torch::optim::Optimizer {
 public:
  // Every group's options must be MuonGroupOptions; a Muon group holds only 2-D parameters.
  explicit Muon(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                MuonGroupOptions defaults = MuonGroupOptions());

  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  void muon_update(torch::Tensor& param, const MuonGroupOptions& options);
  void adamw_update(torch::Tensor& param, const MuonGroupOptions& options);
};

}  // namespace attnlab
