// Shared pieces of softmax attention used by several modules: the masked softmax product with
// safe fully-masked rows, KV-cache concatenation at absolute positions, and the model's init
// scheme for one projection (for reset_parameters).
#pragma once

#include <torch/torch.h>

#include "modules/attention.h"

namespace attnlab {

// The model's scheme for one projection (AttentionImpl::reset_parameters): weight ~ N(0, std)
// (one normal_ draw of weight.numel() values), bias (when the projection has one) zeroed.
void init_projection(torch::nn::Linear& projection, double std);

struct AttentionKeys {
  torch::Tensor k;          // [B, H_kv, T_k, D_k] (cache + current)
  torch::Tensor v;          // [B, H_kv, T_k, D_v]
  torch::Tensor positions;  // [T_k] absolute key positions
};

// Concatenates the cached keys/values with this step's (k, v at `positions`) and, when
// context.cache_commit, stores the result back in context.cache. Without a cache returns inputs.
AttentionKeys keys_with_cache(const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& positions, const AttentionContext& context);

// The standard prologue of q/k/v attention modules: project x [B, T, C] with the three
// projections, split into heads ([B, H, T, D]; keys/values with n_kv_heads), rotate q and k at
// context.positions when use_rope (rotate-half RoPE), and join the KV cache.
struct ProjectedAttention {
  torch::Tensor q;
  AttentionKeys keys;
};
ProjectedAttention project_heads_with_cache(const torch::Tensor& x, torch::nn::Linear& q_proj,
                                            torch::nn::Linear& k_proj, torch::nn::Linear& v_proj,
                                            int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                                            bool use_rope, double rope_theta,
                                            const AttentionContext& context,
                                            const RopeScaling& rope_scaling = {});

// softmax(q kᵀ · scale + mask) in float32 (float64 stays float64). q: [B, H, T_q, D];
// k: [B, H, T_k, D]; mask: bool broadcastable to [B, H, T_q, T_k], or undefined for no mask.
// Rows with no visible key get all-zero probabilities (not NaN).
torch::Tensor masked_softmax_probs(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& mask, double scale);

// softmax(q kᵀ · scale) with the keys marked in `hidden` (bool, broadcastable to the scores;
// undefined = none) excluded, for callers that know every row still sees at least one key (so no
// row needs the zero-row fix-up of masked_softmax_probs). Same dtype rules as masked_softmax_probs.
torch::Tensor softmax_probs_hiding(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& hidden, double scale);

// Repeats KV heads for grouped-query attention: [B, H_kv, T, D] -> [B, H_kv*n_rep, T, D], with
// query head j using kv head j / n_rep (flash-attn rule).
torch::Tensor repeat_kv(const torch::Tensor& x, int64_t n_rep);

}  // namespace attnlab
