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

#include <torch/arg.h>

#include <optional>
#include <string>

#include "modules/attention.h"
#include "modules/rope.h"

namespace attnlab {

// attention=diff: the `attention:` group's keys (configs/attention/diff.yaml holds the same
// defaults; a test keeps them equal).
struct DiffModuleOptions {
  TORCH_ARG(std::optional<double>, lambda_init) = std::nullopt;
  TORCH_ARG(double, lambda_init_offset) = 0.0;
  TORCH_ARG(double, subln_eps) = 1e-5;
  TORCH_ARG(bool, rope) = true;
  TORCH_ARG(std::string, rope_style) = "interleaved";

 public:
  template <class V>
  void visit(V& v) {
    v("lambda_init", lambda_init(),
      "null: the schedule 0.8 - 0.6 exp(-0.3 (layer_index + lambda_init_offset))",
      config::finite());
    v("lambda_init_offset", lambda_init_offset(), "0: unilm (0-based depth); -1: Motif",
      config::finite());
    v("subln_eps", subln_eps(), "eps of the per-head RMSNorm over 2d (unilm subln)",
      config::at_least(0.0), config::finite());
    v("rope", rope(), "rotary positions on q/k (off when model.positions=learned)");
    v("rope_style", rope_style(),
      "interleaved (unilm, GPT-J pairs) | rotate_half (NeoX; alias neox)",
      config::one_of({"interleaved", "rotate_half", "neox"}));
  }
};

// attention=gda: DIFF's keys with Motif's defaults, and the signal/noise split
// (configs/attention/gda.yaml).
struct GdaModuleOptions {
  TORCH_ARG(std::optional<int64_t>, n_signal) = std::nullopt;
  TORCH_ARG(std::optional<int64_t>, n_noise) = std::nullopt;
  TORCH_ARG(int64_t, group_ratio) = 3;
  TORCH_ARG(std::optional<int64_t>, n_kv_pairs) = std::nullopt;
  TORCH_ARG(std::optional<double>, lambda_init) = std::nullopt;
  TORCH_ARG(double, lambda_init_offset) = -1.0;
  TORCH_ARG(double, subln_eps) = 1e-5;
  TORCH_ARG(bool, rope) = true;
  TORCH_ARG(std::string, rope_style) = "rotate_half";

 public:
  template <class V>
  void visit(V& v) {
    v("n_signal", n_signal(),
      "signal heads; null with n_noise null: split model.n_heads by group_ratio; one of the "
      "two set: the other is model.n_heads minus it");
    v("n_noise", n_noise(), "noise heads (see n_signal)");
    v("group_ratio", group_ratio(),
      "G when n_signal and n_noise are null: n_noise = n_heads / (G + 1) (paper: 3:1-4:1 best)",
      config::greater_than(0));
    v("n_kv_pairs", n_kv_pairs(), "(k1, k2, v) pairs; null: n_noise");
    v("lambda_init", lambda_init(),
      "null: the schedule 0.8 - 0.6 exp(-0.3 (layer_index + lambda_init_offset))",
      config::finite());
    v("lambda_init_offset", lambda_init_offset(), "-1: Motif (first layer -0.0099); 0: unilm",
      config::finite());
    v("subln_eps", subln_eps(), "eps of the per-head RMSNorm over 2d", config::at_least(0.0),
      config::finite());
    v("rope", rope(), "rotary positions on q/k (off when model.positions=learned)");
    v("rope_style", rope_style(),
      "rotate_half (Motif / vLLM, NeoX; alias neox) | interleaved (unilm DIFF)",
      config::one_of({"interleaved", "rotate_half", "neox"}));
  }
};

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
  // model.attention_backend: select_differential_kernel (attention_backend.h) picks the composed
  // difference map or two softmax attentions through the selected kernel.
  AttentionBackend backend = AttentionBackend::kAuto;
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
