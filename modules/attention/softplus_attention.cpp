// LSSA / LSSAR softplus attention; see softplus_attention.h.
#include "modules/attention/softplus_attention.h"

#include <cmath>

#include "common/error.h"
#include "modules/attention_math.h"
#include "modules/lora.h"
#include "modules/masks.h"
#include "modules/rope.h"

namespace attnlab {

namespace {

// x / s with rows whose sum is 0 kept at 0 (0/0 rows are defined as zero attention).
torch::Tensor safe_row_divide(const torch::Tensor& x, const torch::Tensor& sum) {
  return x / torch::where(sum > 0, sum, torch::ones_like(sum));
}

}  // namespace

torch::Tensor softplus_attention_probs(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& mask,
                                       const torch::Tensor& query_positions,
                                       const SoftplusAttentionOptions& options) {
  namespace F = torch::nn::functional;
  auto compute_dtype = q.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  const double log_d = std::log(static_cast<double>(q.size(-1)));
  auto normalize = F::NormalizeFuncOptions().p(2).dim(-1).eps(1e-12);
  auto q_hat = F::normalize(q.to(compute_dtype), normalize);
  auto k_hat = F::normalize(k.to(compute_dtype), normalize);
  auto visible = mask.to(compute_dtype);
  // N_i: visible keys per row (absolute with a KV cache because the mask is built from absolute
  // positions). Rows with N_i = 0 are fully masked; clamp only keeps log() finite there.
  auto count = visible.sum(-1, /*keepdim=*/true);  // [..., T_q, 1]
  auto row_scale = log_d * count.clamp_min(1.0).log();
  auto cosine = torch::matmul(q_hat, k_hat.transpose(-2, -1));
  // Multiplicative mask (not −inf): masked entries are exactly 0 before the l1 normalisation.
  auto weights = torch::softplus(row_scale * cosine) * visible;
  weights = safe_row_divide(weights, weights.sum(-1, /*keepdim=*/true));
  if (!options.reweight) return weights;

  // Re-weighting: ReLU(A·N − O)^p, l1-normalised. Dividing each row by its max before pow is
  // exactly the formula (the scale cancels in the normalisation) and cannot overflow; the max is
  // detached because the output does not depend on it.
  auto offset = (query_positions.to(weights.device()) >= options.free_rows)
                    .to(compute_dtype)
                    .view({-1, 1});  // [T_q, 1]: 0 on the free rows, 1 elsewhere
  auto excess = torch::relu(weights * count - offset);
  auto row_max = excess.amax(-1, /*keepdim=*/true).detach();
  auto ratio = excess / torch::where(row_max > 0, row_max, torch::ones_like(row_max));
  auto powered = ratio.pow(options.power);
  return safe_row_divide(powered, powered.sum(-1, /*keepdim=*/true));
}

SoftplusAttentionImpl::SoftplusAttentionImpl(const AttentionOptions& options,
                                             const LssarModuleOptions& own, bool reweight)
    : n_heads_(options.n_heads),
      n_kv_heads_(options.n_kv_heads > 0 ? options.n_kv_heads : options.n_heads),
      rope_theta_(options.rope_theta),
      dropout_(options.dropout),
      rope_scaling_(options.rope_scaling) {
  check_user(n_heads_ > 0 && options.d_model % n_heads_ == 0,
             "model.d_model (" + std::to_string(options.d_model) + ") must be divisible by " +
                 "model.n_heads (" + std::to_string(n_heads_) + ")");
  check_user(n_heads_ % n_kv_heads_ == 0, "model.n_heads must be a multiple of model.n_kv_heads");
  head_dim_ = options.d_model / n_heads_;
  use_rope_ = own.rope() && options.rotary_positions;
  softplus_.reweight = reweight;
  softplus_.power = own.power();
  softplus_.free_rows = own.free_rows();
  // p < 1 has an infinite derivative at 0 (every entry at or below uniform weight).
  check_user(softplus_.power >= 1.0,
             "attention.power must be >= 1 for lssar, got " + std::to_string(softplus_.power));
  check_user(softplus_.free_rows >= 0, "attention.free_rows must be >= 0");
  const bool bias = own.bias();
  auto linear = [&](int64_t in, int64_t out) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
  };
  q_proj = register_module("q_proj", linear(options.d_model, n_heads_ * head_dim_));
  k_proj = register_module("k_proj", linear(options.d_model, n_kv_heads_ * head_dim_));
  v_proj = register_module("v_proj", linear(options.d_model, n_kv_heads_ * head_dim_));
  out_proj = register_module("out_proj", linear(n_heads_ * head_dim_, options.d_model));
}

void SoftplusAttentionImpl::reset_parameters(const ParameterInit& init) {
  init_projection(q_proj, init.std);
  init_projection(k_proj, init.std);
  init_projection(v_proj, init.std);
  init_projection(out_proj, init.residual_std);
}

AttentionOutput SoftplusAttentionImpl::forward(const torch::Tensor& x,
                                               const AttentionContext& context) {
  const int64_t batch = x.size(0), length = x.size(1);
  auto [q, keys] =
      project_heads_with_cache(x, q_proj, k_proj, v_proj, n_heads_, n_kv_heads_, head_dim_,
                               use_rope_, rope_theta_, context, rope_scaling_);
  auto mask = build_attention_mask(context.mask, context.positions, keys.positions);
  const int64_t n_rep = n_heads_ / n_kv_heads_;
  auto probs =
      softplus_attention_probs(q, repeat_kv(keys.k, n_rep), mask, context.positions, softplus_);
  auto dropped = torch::dropout(probs, dropout_, is_training());
  auto y = torch::matmul(dropped.to(q.scalar_type()), repeat_kv(keys.v, n_rep));  // [B,H,T,D]
  AttentionOutput out;
  out.y = lora_linear(out_proj, y.transpose(1, 2).reshape({batch, length, n_heads_ * head_dim_}));
  if (context.need_probs) out.probs = probs;
  return out;
}

}  // namespace attnlab
