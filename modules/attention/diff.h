// `diff`: Differential attention (Ye et al., ICLR 2025; docs/methods.md §2) and the shared core of
// `gda` (grouped differential attention, Motif). Each output head i subtracts a "noise" softmax
// map from a "signal" map: o_i = (1 − λ_init)·RMSNorm_{2d}((A1_i − λ·A2_{⌊i/G⌋}) V), with
// λ = exp(λq1·λk1) − exp(λq2·λk2) + λ_init (one scalar per layer). DIFF is the balanced case
// (n_signal == n_noise, G = 1); GDA has G = n_signal / n_noise signal heads per noise head.
//
// Head-count mapping (so parameter counts match `mha` at equal model.d_model / model.n_heads):
// the q/k head dim is d = d_model / model.n_heads; DIFF has n_heads/2 differential heads, each
// with two q/k maps of dim d and a value of dim 2d (q_proj, k_proj, v_proj, out_proj all C x C
// for MHA-shaped KV). KV heads: model.n_kv_heads / 2 (k1,k2) pairs.
//
// Parameter names/layouts follow unilm's multihead_flashdiff (and vLLM/Motif for GDA): q_proj rows
// are per group [G signal heads, 1 noise head] × d (DIFF: [q1, q2] per head, interleaved), k_proj
// rows [k1, k2] per kv pair, v_proj rows [v1|v2] (2d) per kv pair, out_proj (C, n_signal·2d),
// lambda_q1/k1/q2/k2 [d], subln.weight [2d]. GQA follows flash semantics: signal head i and its
// noise head use kv pair ⌊i / (n_signal / n_kv)⌋ (not the naive file's repeat_kv quirk).
#pragma once

#include <string>

#include "modules/attention.h"
#include "modules/rope.h"

namespace attnlab {

struct DiffOptions {
  int64_t d_model = 0;
  int64_t n_signal = 0;  // signal (q1) heads = output heads
  int64_t n_noise = 0;   // noise (q2) heads; n_signal % n_noise == 0
  int64_t n_kv = 0;      // (k1, k2, v) kv pairs; divides n_noise
  int64_t head_dim = 0;  // d (q/k); values have 2d
  double lambda_init = 0.8;
  double subln_eps = 1e-5;
  bool rope = true;
  RopeStyle rope_style = RopeStyle::kInterleaved;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double dropout = 0.0;
};

// λ_init = 0.8 − 0.6·exp(−0.3·(layer_index + offset)); offset 0 = unilm, −1 = Motif GDA.
double diff_lambda_init(int64_t layer_index, double offset);

// "interleaved" | "rotate_half" (alias "neox"); UserError otherwise.
RopeStyle parse_rope_style(const std::string& name, const std::string& key);

// DIFF options from model.* and the `attention:` group (see configs/attention/diff.yaml).
DiffOptions diff_options_from(const AttentionOptions& options);

// unilm's RMSNorm for `subln`: normalises the last dim in float32 (float64 stays float64), casts
// back, then scales by `weight` — applied per head, over the 2d value channels.
class HeadRmsNormImpl : public torch::nn::Module {
 public:
  HeadRmsNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(HeadRmsNorm);

class DiffAttentionImpl : public AttentionImpl {
 public:
  explicit DiffAttentionImpl(const AttentionOptions& options);
  explicit DiffAttentionImpl(const DiffOptions& options);
  // probs (when requested): the differential map A1_i − λ·A2_{⌊i/G⌋}, [B, n_signal, T_q, T_k].
  AttentionOutput forward(const torch::Tensor& x, const AttentionContext& context) override;
  // q/k/v_proj ~ N(0, init.std), out_proj ~ N(0, init.residual_std) (drawn in that order); the
  // λ vectors keep unilm's N(0, 0.1) and subln its ones from the constructor.
  void reset_parameters(const ParameterInit& init) override;

  const DiffOptions& options() const { return options_; }
  // λ (a 0-dim tensor in the parameters' dtype) as used by forward.
  torch::Tensor lambda_full() const;

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
  torch::Tensor lambda_q1, lambda_k1, lambda_q2, lambda_k2;
  HeadRmsNorm subln{nullptr};

 private:
  DiffOptions options_;
};

}  // namespace attnlab
