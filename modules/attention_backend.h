// The one place that picks how softmax attention over all query rows is computed, and the device
// kernel path itself. Three kernels exist:
//   - kBlockSparse: attnlab's CPU block-skipping tiles and fused prefix-row kernels
//     (block_sparse_attention.h, kernels/prefix_attention.h). They plan tiles from positions on
//     the host, so they are CPU-only in practice.
//   - kDevice: at::scaled_dot_product_attention (flash / memory-efficient kernels on CUDA, its
//     math or CPU flash kernel on the CPU). Causal masks over in-order positions use is_causal;
//     every other mask (block-causal, BD3-LM clean context, key padding, KV caches) is built on the
//     tensors' device. Nothing is copied to the host and no value is read back inside the step.
//   - kDense: composed masked softmax, which also returns the probabilities (probes need them).
// model.attention_backend chooses among them (attention.h's AttentionBackend); `auto` takes the
// CPU kernels on the CPU and the device kernels on any other device. The `sdpa` value runs the
// device path on the CPU too, which is how CI tests the code that GPUs run.
#pragma once

#include <torch/torch.h>

#include <string>

#include "modules/attention.h"

namespace attnlab {

// "auto" | "sdpa" | "native"; UserError naming model.attention_backend otherwise.
AttentionBackend parse_attention_backend(const std::string& name);

enum class SoftmaxKernel { kBlockSparse, kDevice, kDense };

// The kernel for softmax attention of q ([B, H, T_q, D]) under `context`. Probes (need_probs)
// always get kDense.
SoftmaxKernel select_softmax_kernel(AttentionBackend backend, const torch::Tensor& q,
                                    const AttentionContext& context);

// True when the selected kernel for q runs without host work (kDevice): modules use it to leave
// out CPU-only shortcuts (e.g. MoH's gathered routed rows) on such devices.
bool uses_device_kernels(AttentionBackend backend, const torch::Tensor& q);

struct SoftmaxAttentionOptions {
  double scale = 1.0;
  double dropout = 0.0;  // attention-probability dropout
  bool training = false;
};

struct SoftmaxAttentionResult {
  torch::Tensor y;      // [B, H, T_q, D_v] in q's dtype
  torch::Tensor probs;  // [B, H, T_q, T_k], only from kDense
};

// softmax(q kᵀ·scale + mask) v with the selected kernel. k, v: [B, H, T_k, D] with KV heads
// already repeated; key_positions: [T_k] absolute positions (cache included). Rows with no visible
// key are zero, as in masked_softmax_probs.
SoftmaxAttentionResult softmax_attention(AttentionBackend backend, const torch::Tensor& q,
                                         const torch::Tensor& k, const torch::Tensor& v,
                                         const torch::Tensor& key_positions,
                                         const AttentionContext& context,
                                         const SoftmaxAttentionOptions& options);

// The kDevice kernel on its own (tests compare it with the dense reference on the CPU).
torch::Tensor device_softmax_attention(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v, const torch::Tensor& key_positions,
                                       const AttentionContext& context,
                                       const SoftmaxAttentionOptions& options);

}  // namespace attnlab
