// Multi-head / grouped-query softmax attention; see mha.h.
#include "modules/attention/mha.h"

#include "common/error.h"
#include "modules/attention_backend.h"
#include "modules/attention_math.h"
#include "modules/lora.h"
#include "modules/rope.h"

namespace attnlab {

MhaAttentionImpl::MhaAttentionImpl(const AttentionOptions& options)
    : n_heads_(options.n_heads),
      n_kv_heads_(options.n_kv_heads > 0 ? options.n_kv_heads : options.n_heads),
      rope_theta_(options.rope_theta),
      dropout_(options.dropout),
      rope_scaling_(options.rope_scaling),
      backend_(options.backend) {
  check_user(options.d_model % n_heads_ == 0, "model.d_model (" + std::to_string(options.d_model) +
                                                  ") must be divisible by " + "model.n_heads (" +
                                                  std::to_string(n_heads_) + ")");
  check_user(n_heads_ % n_kv_heads_ == 0, "model.n_heads must be a multiple of model.n_kv_heads");
  head_dim_ = options.d_model / n_heads_;
  const auto own = module_options<MhaModuleOptions>(options);
  use_rope_ = own.rope() && options.rotary_positions;
  // attention.bias (null = the model family's: every projection for GPT-2, q/k/v only for Qwen2).
  const bool bias = own.bias().value_or(options.bias);
  const bool qkv_bias = own.bias().value_or(options.qkv_bias);
  auto linear = [&](int64_t in, int64_t out, bool with_bias) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(with_bias));
  };
  q_proj = register_module("q_proj", linear(options.d_model, n_heads_ * head_dim_, qkv_bias));
  k_proj = register_module("k_proj", linear(options.d_model, n_kv_heads_ * head_dim_, qkv_bias));
  v_proj = register_module("v_proj", linear(options.d_model, n_kv_heads_ * head_dim_, qkv_bias));
  out_proj = register_module("out_proj", linear(n_heads_ * head_dim_, options.d_model, bias));
}

void MhaAttentionImpl::reset_parameters(const ParameterInit& init) {
  init_projection(q_proj, init.std);
  init_projection(k_proj, init.std);
  init_projection(v_proj, init.std);
  init_projection(out_proj, init.residual_std);
}

AttentionOutput MhaAttentionImpl::forward(const torch::Tensor& x, const AttentionContext& context) {
  const int64_t batch = x.size(0), length = x.size(1);
  auto [q, keys] =
      project_heads_with_cache(x, q_proj, k_proj, v_proj, n_heads_, n_kv_heads_, head_dim_,
                               use_rope_, rope_theta_, context, rope_scaling_);
  const int64_t n_rep = n_heads_ / n_kv_heads_;
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  AttentionOutput out;
  auto attended = softmax_attention(backend_, q, repeat_kv(keys.k, n_rep), repeat_kv(keys.v, n_rep),
                                    keys.positions, context, {scale, dropout_, is_training()});
  const torch::Tensor& y = attended.y;  // [B, H, T, D]
  out.y = lora_linear(out_proj, y.transpose(1, 2).reshape({batch, length, n_heads_ * head_dim_}));
  if (context.need_probs) out.probs = attended.probs;
  return out;
}

}  // namespace attnlab
