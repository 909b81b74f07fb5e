// `mha`: multi-head softmax attention with optional grouped KV heads (GQA) and RoPE — the baseline
// every other attention module is compared with. Parameter names follow HF Llama / unilm DIFF
// (q_proj, k_proj, v_proj, out_proj; weights [out, in]) so state_dicts exchange with PyTorch code.
#pragma once

#include <torch/arg.h>

#include <optional>

#include "modules/attention.h"

namespace attnlab {

// attention=mha: the `attention:` group's keys (configs/attention/mha.yaml holds the same
// defaults; a test keeps them equal).
struct MhaModuleOptions {
  TORCH_ARG(bool, rope) = true;
  TORCH_ARG(std::optional<bool>, bias) = std::nullopt;

 public:
  template <class V>
  void visit(V& v) {
    v("rope", rope(), "rotary positions on q/k (off when model.positions=learned)");
    v("bias", bias(),
      "biases on the projections; null: the model family's (model.attention_bias, "
      "model.qkv_bias), true/false: every projection");
  }
};

class MhaAttentionImpl : public AttentionImpl {
 public:
  explicit MhaAttentionImpl(const AttentionOptions& options);
  AttentionOutput forward(const torch::Tensor& x, const AttentionContext& context) override;
  // q/k/v_proj ~ N(0, init.std), out_proj ~ N(0, init.residual_std), biases zero; drawn in the
  // order q, k, v, out.
  void reset_parameters(const ParameterInit& init) override;

  int64_t n_heads() const { return n_heads_; }
  int64_t n_kv_heads() const { return n_kv_heads_; }
  int64_t head_dim() const { return head_dim_; }

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  int64_t n_heads_, n_kv_heads_, head_dim_;
  double rope_theta_, dropout_;
  RopeScaling rope_scaling_;
  AttentionBackend backend_ = AttentionBackend::kAuto;
  bool use_rope_;
};

}  // namespace attnlab
