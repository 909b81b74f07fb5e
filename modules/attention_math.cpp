// See attention_math.h.
#include "modules/attention_math.h"

#include "modules/lora.h"
#include "modules/rope.h"

namespace attnlab {

void init_projection(torch::nn::Linear& projection, double std) {
  torch::NoGradGuard no_grad;
  projection->weight.normal_(0.0, std);
  if (projection->bias.defined()) projection->bias.zero_();
}

AttentionKeys keys_with_cache(const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& positions, const AttentionContext& context) {
  if (context.cache == nullptr) return {k, v, positions};
  KVCache& cache = *context.cache;
  AttentionKeys keys{k, v, positions};
  if (cache.length() > 0) {
    keys.k = torch::cat({cache.k, k}, -2);
    keys.v = torch::cat({cache.v, v}, -2);
    keys.positions = torch::cat({cache.positions, positions}, 0);
  }
  if (context.cache_commit) {
    cache.k = keys.k.detach();
    cache.v = keys.v.detach();
    cache.positions = keys.positions;
  }
  return keys;
}

ProjectedAttention project_heads_with_cache(const torch::Tensor& x, torch::nn::Linear& q_proj,
                                            torch::nn::Linear& k_proj, torch::nn::Linear& v_proj,
                                            int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                                            bool use_rope, double rope_theta,
                                            const AttentionContext& context,
                                            const RopeScaling& rope_scaling) {
  const int64_t batch = x.size(0), length = x.size(1);
  auto heads = [&](const torch::Tensor& t, int64_t n) {
    return t.view({batch, length, n, head_dim}).transpose(1, 2);  // [B, H, T, D]
  };
  // One GEMM for the three projections (weights concatenated on the fly; the parameters keep
  // their own names). split() rather than narrow(): its backward concatenates the three output
  // gradients instead of summing three zero-padded full-width ones, and the input gradient is
  // then one GEMM instead of three GEMMs and two additions.
  const int64_t q_dim = n_heads * head_dim, kv_dim = n_kv_heads * head_dim;
  auto weight = torch::cat({q_proj->weight, k_proj->weight, v_proj->weight}, 0);
  torch::Tensor bias;
  if (q_proj->bias.defined()) bias = torch::cat({q_proj->bias, k_proj->bias, v_proj->bias}, 0);
  auto qkv = torch::linear(x, weight, bias).split_with_sizes({q_dim, kv_dim, kv_dim}, -1);
  // LoRA adapters (modules/lora.h) add their low-rank path to their projection's part.
  const torch::nn::Linear* projections[3] = {&q_proj, &k_proj, &v_proj};
  for (int i = 0; i < 3; ++i) {
    const torch::Tensor delta = lora_delta(**projections[i], x);
    if (delta.defined()) qkv[i] = qkv[i] + delta;
  }
  auto q = heads(qkv[0], n_heads);
  auto k = heads(qkv[1], n_kv_heads);
  auto v = heads(qkv[2], n_kv_heads);
  if (use_rope) {
    q = apply_rope(q, context.positions, rope_theta, RopeStyle::kRotateHalf, rope_scaling);
    k = apply_rope(k, context.positions, rope_theta, RopeStyle::kRotateHalf, rope_scaling);
  }
  return {q, keys_with_cache(k, v, context.positions, context)};
}

torch::Tensor softmax_probs_hiding(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& hidden, double scale) {
  auto compute_dtype = q.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  // Scaling q (T_q x D) instead of the scores (T_q x T_k) saves a pass over the larger tensor.
  auto scores = torch::matmul(q.to(compute_dtype) * scale, k.to(compute_dtype).transpose(-2, -1));
  if (hidden.defined()) scores.masked_fill_(hidden, -std::numeric_limits<double>::infinity());
  return torch::softmax(scores, -1);
}

torch::Tensor masked_softmax_probs(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& mask, double scale) {
  if (!mask.defined()) return softmax_probs_hiding(q, k, torch::Tensor(), scale);
  // A row whose keys are all masked would be NaN after softmax (and poison gradients); its
  // attention is defined as zero, so such rows are softmaxed unmasked and then zeroed. On the
  // CPU the (cheap) check on the small mask skips that work when every row sees a key.
  auto hidden_row = mask.any(-1, /*keepdim=*/true).logical_not();
  if (mask.device().is_cpu() && !hidden_row.any().item<bool>()) {
    return softmax_probs_hiding(q, k, mask.logical_not(), scale);
  }
  auto blocked = mask.logical_not().logical_and(hidden_row.logical_not());
  return softmax_probs_hiding(q, k, blocked, scale).masked_fill(hidden_row, 0.0);
}

torch::Tensor repeat_kv(const torch::Tensor& x, int64_t n_rep) {
  if (n_rep == 1) return x;
  return x.repeat_interleave(n_rep, /*dim=*/1);
}

}  // namespace attnlab
