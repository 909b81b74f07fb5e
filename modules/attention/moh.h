// `moh`: Mixture-of-Head attention (Jin et al., ICML 2025; docs/methods.md §1). Heads 0..h_s-1 are
// shared (always active, weighted by a softmax router W_s), heads h_s..h-1 are routed: a softmax
// router W_r picks the top-K per token, renormalised over the K chosen and scaled by K; a 2-way
// router W_h mixes the two groups ([a0, a1] = 2·softmax). Gates multiply head outputs before the
// output projection. Parameter names follow the official MoH-DiT code so state_dicts exchange
// with it: qkv (3hd, C) rows [q|k|v] head-major, proj, wg (= W_r), wg_0 (= W_h), wg_1 (= W_s).
//
// `attention.router: qnorm` is the parameter-free MoH-LLaMA3 router for continue-tuning: score =
// ‖q_i‖₂ (before RoPE) over the per-token unbiased std across routed heads, softmax, top-K, 0/1
// gates (straight-through estimator in training).
//
// Only active (token, head) pairs are computed (modules/routed_head_attention.*): every routed
// head's active query rows are gathered into one padded batch that attends tile by tile over
// the visible key prefix, so attention cost scales with the active fraction.
#pragma once

#include <torch/arg.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "modules/attention.h"

namespace attnlab {

// attention=moh: the `attention:` group's keys (configs/attention/moh.yaml holds the same
// defaults; a test keeps them equal). shared_heads and routed_k take one value for every layer
// or a list with one per layer (MoH-DiT's per-layer lists).
struct MohModuleOptions {
  TORCH_ARG(std::optional<std::vector<int64_t>>, shared_heads) = std::nullopt;
  TORCH_ARG(std::optional<std::vector<int64_t>>, routed_k) = std::nullopt;
  TORCH_ARG(std::string, router) = "learned";
  TORCH_ARG(std::string, router_init) = "xavier_uniform";
  TORCH_ARG(double, balance_coef) = 0.01;
  TORCH_ARG(bool, qkv_bias) = false;
  TORCH_ARG(bool, proj_bias) = true;
  TORCH_ARG(bool, rope) = true;
  TORCH_ARG(bool, sparse_compute) = true;

 public:
  template <class V>
  void visit(V& v) {
    v("shared_heads", shared_heads(),
      "h_s, always-active heads (one value, or one per layer); null: int(0.5 n_heads)",
      config::at_least(0));
    v("routed_k", routed_k(),
      "K, routed heads active per token (one value, or one per layer); null: int(0.25 n_heads)",
      config::at_least(0));
    v("router", router(),
      "learned (softmax routers W_r, W_h, W_s) | qnorm (MoH-LLaMA3's parameter-free router)",
      config::one_of({"learned", "qnorm"}));
    v("router_init", router_init(), "xavier_uniform (MoH-DiT) | trunc_normal (MoH-ViT, std 0.02)",
      config::one_of({"xavier_uniform", "trunc_normal"}));
    v("balance_coef", balance_coef(), "beta: aux_losses.moh_balance = beta * l_aux (training)",
      config::at_least(0.0), config::finite());
    v("qkv_bias", qkv_bias(), "bias on the fused qkv projection (MoH-DiT passes true)");
    v("proj_bias", proj_bias(), "bias on the output projection (nn.Linear's default)");
    v("rope", rope(), "rotary positions on q/k (off when model.positions=learned)");
    v("sparse_compute", sparse_compute(),
      "compute attention only for active (token, head) pairs (exact; faster on the CPU)");
  }
};

struct MohOptions {
  int64_t d_model = 0;
  int64_t n_heads = 0;
  int64_t head_dim = 0;
  int64_t shared_heads = 0;                    // h_s for this layer
  int64_t routed_k = 0;                        // K for this layer (0 = all heads shared)
  std::string router = "learned";              // learned | qnorm
  std::string router_init = "xavier_uniform";  // xavier_uniform (DiT) | trunc_normal (ViT)
  double balance_coef = 0.01;                  // β: aux_losses["moh_balance"] = β · l_aux
  bool qkv_bias = false;
  bool proj_bias = true;
  bool rope = true;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double dropout = 0.0;
  bool sparse_compute = true;  // gather active query rows per routed head (exact; faster)
  // model.attention_backend. select_routed_kernel (attention_backend.h) decides whether routed
  // rows are skipped: with device kernels (CUDA, or `sdpa`) every head attends all rows and
  // inactive heads are zeroed by their gate, since gathering rows needs host-side planning.
  AttentionBackend backend = AttentionBackend::kAuto;
};

// Reads the `attention:` group for layer options.layer_index; `shared_heads` / `routed_k` may be
// an int or a list indexed by layer. UserError on inconsistent values.
MohOptions moh_options_from(const AttentionOptions& options);

class MohAttentionImpl : public AttentionImpl {
 public:
  explicit MohAttentionImpl(const AttentionOptions& options);
  explicit MohAttentionImpl(const MohOptions& options);
  AttentionOutput forward(const torch::Tensor& x, const AttentionContext& context) override;
  // Deliberately changes nothing and draws nothing: qkv and proj keep LibTorch's default Linear
  // init from the constructor (kaiming-uniform weights, U(±1/sqrt(fan_in)) biases), and the
  // routers wg/wg_0/wg_1 their attention.router_init. That is the init every MoH run so far was
  // trained with (the model's GPT-2 scheme matched only q/k/v/out_proj names, which MoH's fused
  // qkv/proj do not have); applying init.std / init.residual_std to qkv / proj would change
  // every MoH result and the RNG stream of the layers after it, so it would be a new option.
  void reset_parameters(const ParameterInit& init) override;

  const MohOptions& options() const { return options_; }

  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  torch::nn::Linear wg{nullptr}, wg_0{nullptr}, wg_1{nullptr};  // absent when unused

 private:
  struct Gates {
    torch::Tensor gates;    // [B, T, h] per-head weights
    torch::Tensor active;   // [B, T, E] bool: routed heads selected (undefined when K == 0)
    torch::Tensor balance;  // l_aux (undefined outside training / when K == 0)
  };
  Gates route(const torch::Tensor& x, const torch::Tensor& q);
  // Softmax attention of every query row of the given heads (block-skipping when the mask
  // allows); stores the dense probabilities in out.probs when the context asks for them.
  torch::Tensor attend_all_rows(const torch::Tensor& q, const torch::Tensor& k,
                                const torch::Tensor& v, const torch::Tensor& key_positions,
                                const AttentionContext& context, AttentionOutput& out) const;
  MohOptions options_;
};

// MHA -> MoH weight conversion for init_from. `target_state` is a freshly initialised MoH model's
// state_dict (it fixes router shapes/initial values and whether qkv/proj have biases). For every
// target key `<P>qkv.weight` the source must hold `<P>{q,k,v}_proj.weight`; qkv = cat(q, k, v)
// rows (a source with grouped KV heads has each KV head repeated for its query heads, which needs
// `head_dim`: MoH has no GQA), proj = out_proj (bias copied or zero). Every other target
// key is copied from `mha_state` when present with the same shape (embeddings, norms, MLPs),
// routers keep the target's init, or are zeroed when `zero_routers` (uniform gates: with K equal
// to the number of routed heads the converted MoH then computes exactly the MHA function).
std::map<std::string, torch::Tensor> convert_mha_to_moh(
    const std::map<std::string, torch::Tensor>& mha_state,
    const std::map<std::string, torch::Tensor>& target_state, bool zero_routers = false,
    int64_t head_dim = 0);

// The registry entry (modules/weight_conversion.h) for init_from with MHA weights into MoH
// layers: accepts a state dict with blocks.0.attn.q_proj.weight and converts with the routers
// keeping their init.
struct WeightConversion;
WeightConversion mha_to_moh_conversion();

}  // namespace attnlab
