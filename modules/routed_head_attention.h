// Softmax attention for MoH's routed heads over only their active query rows (docs/methods.md §1:
// a routed head that the router did not pick for a token contributes nothing to it, so its row
// need not be computed). For every (batch, head) the active rows are gathered in ascending order
// into one padded [B, E, n_max, D] batch, so each tile is a few large batched matmuls instead of
// a loop over heads; tiles of rows attend only to the key prefix their latest row can see
// (causal / block-causal), like block_sparse_attention; where it applies, the fused prefix kernel
// does the same row by row without composed-op overheads. Attention cost therefore follows the
// active fraction K/E times the visible fraction of keys. The result equals dense masked
// attention on the active rows and is zero on inactive rows (values and gradients). Which of
// these kernels runs is select_routed_kernel's decision (attention_backend.h), not this file's.
#pragma once

#include <torch/torch.h>

#include "modules/attention.h"
#include "modules/attention_backend.h"

namespace attnlab {

struct RoutedAttentionOptions {
  double scale = 1.0;
  double dropout = 0.0;
  bool training = false;
  int64_t tile = 64;  // gathered query rows per tile (composed path)
  // Run the gathered rows through the fused kernel (kernels/prefix_attention.h) when it applies:
  // ascending keys (or a bidirectional mask), no key padding, no active dropout, CPU float32 /
  // float64. false forces the composed tiles (tests).
  bool fused = true;
  // model.attention_backend: with device kernels every row is computed (select_routed_kernel).
  AttentionBackend backend = AttentionBackend::kAuto;
};

// The selector's request for these options (rows are skippable: callers only route here when the
// module's maths allows it).
RoutedKernelRequest routed_kernel_request(const RoutedAttentionOptions& options);

// q: [B, E, T, D] routed heads' queries; k, v: [B, E, T_k, D] / [B, E, T_k, D_v] (cache included);
// active: [B, T, E] bool, the routed heads picked per token; positions are absolute [T] / [T_k]
// int64. spec: causal, block_causal or bidirectional, with optional key padding (not the BD3-LM
// clean-context layout). Returns [B, E, T, D_v] in q's dtype, zero where a head is inactive.
// The kernel is select_routed_kernel's (attention_backend.h), or `choice` when the caller already
// asked it for these tensors.
torch::Tensor routed_head_attention(const torch::Tensor& q, const torch::Tensor& k,
                                    const torch::Tensor& v, const torch::Tensor& active,
                                    const torch::Tensor& query_positions,
                                    const torch::Tensor& key_positions, const MaskSpec& spec,
                                    const RoutedAttentionOptions& options);
torch::Tensor routed_head_attention(const torch::Tensor& q, const torch::Tensor& k,
                                    const torch::Tensor& v, const torch::Tensor& active,
                                    const torch::Tensor& query_positions,
                                    const torch::Tensor& key_positions, const MaskSpec& spec,
                                    const RoutedAttentionOptions& options,
                                    const RoutedKernelChoice& choice);

// MoH's heads in one call: the first `shared` heads of q/k/v attend with every row, the others
// (routed) only with the rows `active` [B, T, h − shared] selects, zero elsewhere. Returns
// [B, h, T, D_v]. With select_routed_kernel's kRowMask all heads go through one fused call with a
// row mask (no gathering, no concatenation); with the gathered kernels the shared heads use
// select_softmax_kernel's kernel and the routed heads routed_head_attention, concatenated; with
// kAllRows every head attends every row and the routed heads' inactive rows are zeroed.
torch::Tensor shared_and_routed_attention(const torch::Tensor& q, const torch::Tensor& k,
                                          const torch::Tensor& v, int64_t shared,
                                          const torch::Tensor& active,
                                          const torch::Tensor& query_positions,
                                          const torch::Tensor& key_positions, const MaskSpec& spec,
                                          const RoutedAttentionOptions& options);
torch::Tensor shared_and_routed_attention(const torch::Tensor& q, const torch::Tensor& k,
                                          const torch::Tensor& v, int64_t shared,
                                          const torch::Tensor& active,
                                          const torch::Tensor& query_positions,
                                          const torch::Tensor& key_positions, const MaskSpec& spec,
                                          const RoutedAttentionOptions& options,
                                          const RoutedKernelChoice& choice);

}  // namespace attnlab
