// Attention masks as dense boolean "may attend" matrices, built from absolute query/key positions
// so that the same code serves full forwards and KV-cached decoding. True = attend.
#pragma once

#include <torch/torch.h>

#include <string>

namespace attnlab {

enum class MaskKind { kCausal, kBidirectional, kBlockCausal };

// Parses "causal" | "bidirectional" | "block_causal"; UserError otherwise.
MaskKind parse_mask_kind(const std::string& name);
std::string mask_kind_name(MaskKind kind);

struct MaskSpec {
  MaskKind kind = MaskKind::kCausal;
  int64_t block_size = 0;  // block_causal only: floor(k/B) <= floor(q/B)
  // BD3-LM training layout: the sequence is [x_t ; x_0] (length 2n) and both halves carry the same
  // positions 0..n-1. The three-part mask is built from (half, block) of each query/key.
  bool clean_context = false;
  // Optional [B, T_k] bool, true = real token. Keys that are padding are never attended; a query
  // row with no visible key returns zeros.
  torch::Tensor key_padding;
};

// [T_q, T_k] bool for the mask kind in `spec` (causal, bidirectional, block_causal), given the
// absolute positions of queries and keys (int64, same device). clean_context is not handled here
// (see build_attention_mask).
torch::Tensor positional_mask(const MaskSpec& spec, const torch::Tensor& query_positions,
                              const torch::Tensor& key_positions);

// Causal and block-causal masks as "visibility ids": key k is visible to query q iff
// id(k) <= id(q), with id = the position (causal) or floor(position / block_size) (block_causal).
// Block-skipping attention tiles by these ids. Not defined for bidirectional masks.
torch::Tensor visibility_ids(const MaskSpec& spec, const torch::Tensor& positions);

// When every query row sees a prefix of the keys (positional masks over keys whose visibility ids
// ascend, or bidirectional masks), the number of keys each row sees: [T_q] int64 on the CPU (the
// fused attention kernels take it). Undefined when the keys' ids do not ascend. Key padding and
// clean_context are not looked at: callers exclude them.
torch::Tensor prefix_visible_counts(const MaskSpec& spec, const torch::Tensor& query_positions,
                                    const torch::Tensor& key_positions);

// The full mask for one attention call: [T_q, T_k] or, when key_padding is set, [B, 1, T_q, T_k].
// For clean_context (BD3-LM [x_t ; x_0], no cache) T_q == T_k == 2n and positions hold 0..n-1
// twice; the three-part mask M_BD | M_OBC | M_BC is returned.
torch::Tensor build_attention_mask(const MaskSpec& spec, const torch::Tensor& query_positions,
                                   const torch::Tensor& key_positions);

}  // namespace attnlab
