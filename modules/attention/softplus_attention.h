// `lssa` / `lssar`: softplus attention with length scaling and (lssar) re-weighting, Gao &
// Spratling arXiv 2501.13428 (docs/methods.md §3). Per head, with l2-normalised q̂, k̂ (after RoPE,
// which commutes with the l2 norm), d = head dim and N_i = number of keys row i may see:
//   LSSA:  A_ij = softplus(log d · log N_i · q̂_i·k̂_j) · M_ij,      A_i ← A_i / ‖A_i‖₁
//   LSSAR: A_ij ← ReLU(A_ij·N_i − O_i)^p,                          A_i ← A_i / ‖A_i‖₁
// with O_i = 0 for the first `free_rows` (3) absolute positions and 1 elsewhere. There is no
// 1/√d and the mask is multiplicative. N_i and the free rows use absolute positions/visible-key
// counts, so KV-cached decoding equals the full forward.
//
// Choices (docs/methods.md §3 lists them as open points):
//  * N_i = number of visible keys of row i under the actual mask (causal: position + 1; block-
//    causal: keys in blocks ≤ the row's block; bidirectional: all keys; padding keys excluded).
//  * p defaults to 15 (the paper's long-context setting; p = 3 was best at 1K — set power: 3).
//  * No eps: re-weighting divides by the row max before pow (exactly the formula, overflow-free)
//    and rows whose l1 sum is 0 (fully padded rows, or 0/0 rows with no weight above uniform)
//    are returned as zeros.
// Parameter names follow mha (q_proj, k_proj, v_proj, out_proj) so checkpoints convert trivially.
#pragma once

#include <torch/arg.h>

#include "modules/attention.h"

namespace attnlab {

// attention=lssa: the `attention:` group's keys (configs/attention/lssa.yaml).
struct LssaModuleOptions {
  TORCH_ARG(bool, rope) = true;
  TORCH_ARG(bool, bias) = false;

 public:
  template <class V>
  void visit(V& v) {
    v("rope", rope(), "rotary positions on q/k (off when model.positions=learned)");
    v("bias", bias(), "biases on q/k/v/out projections");
  }
};

// attention=lssar: LSSA's keys and the re-weighting's (configs/attention/lssar.yaml).
struct LssarModuleOptions {
  TORCH_ARG(bool, rope) = true;
  TORCH_ARG(bool, bias) = false;
  TORCH_ARG(double, power) = 15.0;
  TORCH_ARG(int64_t, free_rows) = 3;

 public:
  template <class V>
  void visit(V& v) {
    v("rope", rope(), "rotary positions on q/k (off when model.positions=learned)");
    v("bias", bias(), "biases on q/k/v/out projections");
    v("power", power(),
      "p of the re-weighting ReLU(A N - O)^p (the paper's long-context 15; 3 was best at 1K)",
      config::at_least(1.0), config::finite());
    v("free_rows", free_rows(), "absolute positions below this use offset O = 0",
      config::at_least(0));
  }
};

struct SoftplusAttentionOptions {
  bool reweight = false;  // false: LSSA, true: LSSAR
  double power = 15.0;    // p of the re-weighting
  int64_t free_rows = 3;  // absolute positions < free_rows use offset O = 0
};

// The attention weights [B, H, T_q, T_k] (float32, or float64 for float64 inputs).
// q: [B, H, T_q, D], k: [B, H, T_k, D] (un-normalised; normalised here); mask: bool broadcastable
// to [B, H, T_q, T_k] (true = visible); query_positions: [T_q] absolute positions.
torch::Tensor softplus_attention_probs(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& mask,
                                       const torch::Tensor& query_positions,
                                       const SoftplusAttentionOptions& options);

class SoftplusAttentionImpl : public AttentionImpl {
 public:
  // LSSA's options are LSSAR's without the re-weighting (reweight=false ignores power/free_rows).
  SoftplusAttentionImpl(const AttentionOptions& options, const LssarModuleOptions& own,
                        bool reweight);
  AttentionOutput forward(const torch::Tensor& x, const AttentionContext& context) override;
  // As mha: q/k/v_proj ~ N(0, init.std), out_proj ~ N(0, init.residual_std), biases zero; drawn
  // in the order q, k, v, out.
  void reset_parameters(const ParameterInit& init) override;

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  int64_t n_heads_, n_kv_heads_, head_dim_;
  double rope_theta_, dropout_;
  RopeScaling rope_scaling_;
  bool use_rope_;
  SoftplusAttentionOptions softplus_;
};

// Registry entries: `attention=lssa` and `attention=lssar`.
class LssaAttentionImpl : public SoftplusAttentionImpl {
 public:
  explicit LssaAttentionImpl(const AttentionOptions& options)
      : SoftplusAttentionImpl(options, as_lssar(module_options<LssaModuleOptions>(options)),
                              /*reweight=*/false) {}

 private:
  static LssarModuleOptions as_lssar(const LssaModuleOptions& own) {
    return LssarModuleOptions().rope(own.rope()).bias(own.bias());
  }
};

class LssarAttentionImpl : public SoftplusAttentionImpl {
 public:
  explicit LssarAttentionImpl(const AttentionOptions& options)
      : SoftplusAttentionImpl(options, module_options<LssarModuleOptions>(options),
                              /*reweight=*/true) {}
};

}  // namespace attnlab
