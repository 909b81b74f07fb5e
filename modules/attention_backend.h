// The one place that decides which attention kernel every module runs, and the device kernel
// path itself. Modules describe what they compute (all query rows, MoH's routed rows, DIFF/GDA's
// two softmax maps) and ask here; none picks a kernel inline. The softmax kernels:
//   - kBlockSparse: attnlab's CPU block-skipping tiles and fused prefix-row kernels
//     (block_sparse_attention.h, kernels/prefix_attention.h). They plan tiles from positions on
//     the host, so they are CPU-only in practice.
//   - kDevice: at::scaled_dot_product_attention (flash / memory-efficient kernels on CUDA, its
//     math or CPU flash kernel on the CPU). Causal masks over in-order positions use is_causal;
//     every other mask (block-causal, BD3-LM clean context, key padding, KV caches) is built on the
//     tensors' device. Nothing is copied to the host and no value is read back inside the step.
//   - kDense: composed masked softmax, which also returns the probabilities (probes need them).
// MoH's routed heads add kernels that skip the rows a head is inactive on (RoutedKernel), and
// DIFF/GDA choose between their composed difference map and two separate softmax attentions
// (select_differential_kernel). model.attention_backend chooses among them (attention.h's
// AttentionBackend); `auto` takes the CPU kernels on the CPU and the device kernels on any other
// device. The `sdpa` value runs the device path on the CPU too, which is how CI tests the code
// that GPUs run.
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

// True when the backend runs q's attention without host work (device kernels): the selectors
// below use it to leave out CPU-only shortcuts (e.g. MoH's gathered routed rows) on such devices.
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

// softmax_attention with a kernel chosen beforehand by one of the selectors here (modules that
// compute something other than plain attention over all rows, e.g. DIFF's two maps).
SoftmaxAttentionResult softmax_attention_with(SoftmaxKernel kernel, const torch::Tensor& q,
                                              const torch::Tensor& k, const torch::Tensor& v,
                                              const torch::Tensor& key_positions,
                                              const AttentionContext& context,
                                              const SoftmaxAttentionOptions& options);

// MoH's heads when routed heads attend only on the rows their router picked
// (routed_head_attention.h). Inactive rows are zero whichever kernel runs.
enum class RoutedKernel {
  kAllRows,         // every head attends every row with select_softmax_kernel's kernel; the gates
                    // (or the active mask) zero the inactive rows afterwards
  kRowMask,         // the fused prefix row kernels with the active-row mask, no gathering
  kGatheredPrefix,  // active rows gathered per head, then prefix_attention's BLAS tiles
  kGatheredTiles,   // active rows gathered per head, then composed-op tiles
};

struct RoutedKernelRequest {
  // The module's maths lets a routed head skip its inactive rows: the gate there is 0 with no
  // gradient through it (MoH: sparse_compute, 0 < K < E, no straight-through qnorm router in
  // training). false always gives kAllRows.
  bool rows_skippable = true;
  double dropout = 0.0;
  bool training = false;
  bool fused = true;  // false: never the fused kernels (tests force the composed tiles)
};

struct RoutedKernelChoice {
  RoutedKernel kernel = RoutedKernel::kAllRows;
  // prefix_visible_counts of the mask ([T_q] int64 on the CPU), computed on the host only for the
  // CPU kernels that take it; undefined for kAllRows.
  torch::Tensor visible;
};

// The kernel for MoH's heads: q [B, H, T_q, D] (any of its heads), values of width value_dim,
// positions [T_q] / [T_k]. kAllRows whenever rows cannot be skipped, probabilities are wanted, the
// mask is the BD3-LM clean-context layout, or the backend runs device kernels (gathering rows
// needs host-side planning); otherwise the fused row kernels when they take the mask, dtype and
// head width, else gathered rows through the BLAS prefix tiles, else composed tiles.
RoutedKernelChoice select_routed_kernel(AttentionBackend backend, const torch::Tensor& q,
                                        int64_t value_dim, const torch::Tensor& query_positions,
                                        const torch::Tensor& key_positions, const MaskSpec& spec,
                                        bool need_probs, const RoutedKernelRequest& request);

// DIFF/GDA: o = (A1 − λ·A2) V. kDense computes the two probability maps and their difference
// (probes read it; one dropout mask on the difference map); any other kernel computes A1·V and
// A2·V as two softmax attentions with that kernel and subtracts the outputs, which is the same
// function. `sdpa` (and only it, so that defaults stay as measured) takes kDevice unless probes
// want the map or attention dropout is active (two kernels would draw two independent masks
// where the method has one); `auto` and `native` keep the composed map.
SoftmaxKernel select_differential_kernel(AttentionBackend backend, const torch::Tensor& q,
                                         const AttentionContext& context, double dropout,
                                         bool training);

// The kDevice kernel on its own (tests compare it with the dense reference on the CPU).
torch::Tensor device_softmax_attention(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v, const torch::Tensor& key_positions,
                                       const AttentionContext& context,
                                       const SoftmaxAttentionOptions& options);

}  // namespace attnlab
