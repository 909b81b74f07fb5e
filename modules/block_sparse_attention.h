// Block-sparse softmax attention for causal and block-causal masks: queries are processed in tiles
// and each tile attends only to the prefix of keys that any of its rows can see, so fully masked
// key blocks are never multiplied, soft-maxed or stored. The cost follows the visible blocks
// (≈ (n+1)/2n of dense for n blocks) instead of T². Each tile computes its rows' exact softmax
// over the prefix (no online re-scaling is needed because a tile's whole row fits), so the result
// equals dense masked attention (values and gradients, up to float rounding). Usable by every
// softmax module: mha calls it whenever block_sparse_supported() says so.
#pragma once

#include <torch/torch.h>

#include "modules/attention.h"

namespace attnlab {

// True when the mask is causal or block_causal without the BD3-LM clean-context layout and no
// caller needs the dense [B, H, T_q, T_k] probabilities. Key padding and KV caches are supported.
bool block_sparse_supported(const MaskSpec& spec, bool need_probs);

struct BlockSparseOptions {
  double scale = 1.0;    // logit scale (1/√d for mha)
  double dropout = 0.0;  // attention-probability dropout
  bool training = false;
  // Query rows per tile; 0 = automatic (the block size for block_causal — rounded up to a multiple
  // of it that is at least 32 — and 64 for causal).
  int64_t tile = 0;
  // Use the fused kernel (kernels/prefix_attention.h) when it applies: ascending keys, no key
  // padding, no active dropout, CPU float32/float64. false forces the composed tiles (tests).
  bool fused = true;
};

// softmax(q kᵀ·scale + mask) v computed tile by tile. q: [B, H, T_q, D]; k: [B, H, T_k, D];
// v: [B, H, T_k, D_v] (KV heads already repeated); positions are the absolute [T_q] / [T_k] int64
// positions (any order is accepted; when key positions are not ascending the whole key range is
// used per tile, still exact). Rows with no visible key return zeros, like masked_softmax_probs.
// Returns [B, H, T_q, D_v] in q's dtype.
torch::Tensor block_sparse_attention(const torch::Tensor& q, const torch::Tensor& k,
                                     const torch::Tensor& v, const torch::Tensor& query_positions,
                                     const torch::Tensor& key_positions, const MaskSpec& spec,
                                     const BlockSparseOptions& options);

}  // namespace attnlab
