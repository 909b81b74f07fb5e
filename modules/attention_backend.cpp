// Kernel selection for every attention module (softmax over all rows, MoH's routed rows, DIFF/GDA's
// two maps) and the device kernel path; see attention_backend.h.
#include "modules/attention_backend.h"

#include "common/error.h"
#include "modules/attention_math.h"
#include "modules/block_sparse_attention.h"
#include "modules/kernels/prefix_attention.h"
#include "modules/masks.h"

namespace attnlab {

AttentionBackend parse_attention_backend(const std::string& name) {
  if (name == "auto") return AttentionBackend::kAuto;
  if (name == "sdpa") return AttentionBackend::kSdpa;
  if (name == "native") return AttentionBackend::kNative;
  throw UserError("model.attention_backend: expected auto, sdpa or native, got '" + name + "'");
}

bool uses_device_kernels(AttentionBackend backend, const torch::Tensor& q) {
  if (backend == AttentionBackend::kSdpa) return true;
  if (backend == AttentionBackend::kNative) return false;
  return !q.device().is_cpu();
}

SoftmaxKernel select_softmax_kernel(AttentionBackend backend, const torch::Tensor& q,
                                    const AttentionContext& context) {
  if (context.need_probs) return SoftmaxKernel::kDense;
  if (uses_device_kernels(backend, q)) return SoftmaxKernel::kDevice;
  if (block_sparse_supported(context.mask, /*need_probs=*/false))
    return SoftmaxKernel::kBlockSparse;
  return SoftmaxKernel::kDense;
}

torch::Tensor device_softmax_attention(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v, const torch::Tensor& key_positions,
                                       const AttentionContext& context,
                                       const SoftmaxAttentionOptions& options) {
  const MaskSpec& spec = context.mask;
  const double dropout = options.training ? options.dropout : 0.0;
  // Causal over the model's own in-order positions with no cache: the lower triangle, which the
  // flash kernels compute from is_causal alone (no mask tensor at all).
  const bool lower_triangle = spec.kind == MaskKind::kCausal && !spec.clean_context &&
                              !spec.key_padding.defined() && context.positions_in_order &&
                              q.size(2) == k.size(2) && key_positions.is_same(context.positions);
  if (lower_triangle) {
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, dropout,
                                            /*is_causal=*/true, options.scale);
  }
  if (spec.kind == MaskKind::kBidirectional && !spec.key_padding.defined() && !spec.clean_context) {
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, dropout,
                                            /*is_causal=*/false, options.scale);
  }
  // Any other mask, built on the tensors' device from the positions (no host round trip). A row
  // that sees no key (all its keys are padding) is attended unmasked and zeroed afterwards, so
  // neither the values nor the gradients become NaN.
  auto mask =
      build_attention_mask(spec, context.positions.to(q.device()), key_positions.to(q.device()));
  auto hidden_row = mask.any(-1, /*keepdim=*/true).logical_not();
  auto y = at::scaled_dot_product_attention(q, k, v, mask.logical_or(hidden_row), dropout,
                                            /*is_causal=*/false, options.scale);
  return y.masked_fill(hidden_row, 0.0);
}

RoutedKernelChoice select_routed_kernel(AttentionBackend backend, const torch::Tensor& q,
                                        int64_t value_dim, const torch::Tensor& query_positions,
                                        const torch::Tensor& key_positions, const MaskSpec& spec,
                                        bool need_probs, const RoutedKernelRequest& request) {
  RoutedKernelChoice choice;
  // Checked before anything that reads positions on the host, so device runs do no host work.
  if (!request.rows_skippable || need_probs || spec.clean_context ||
      uses_device_kernels(backend, q))
    return choice;
  // The fused kernels need every row to see a prefix of the keys (visible defined) and nothing
  // else that masks or drops probabilities.
  const bool dropout_active = request.dropout > 0.0 && request.training;
  const bool fused = request.fused && !spec.key_padding.defined() && !dropout_active;
  if (fused) choice.visible = prefix_visible_counts(spec, query_positions, key_positions);
  if (fused && choice.visible.defined()) {
    if (prefix_rows_supported(q, value_dim)) {
      choice.kernel = RoutedKernel::kRowMask;
      return choice;
    }
    if (prefix_attention_supported(q)) {
      choice.kernel = RoutedKernel::kGatheredPrefix;
      return choice;
    }
  }
  choice.visible = torch::Tensor();
  choice.kernel = RoutedKernel::kGatheredTiles;
  return choice;
}

SoftmaxKernel select_differential_kernel(AttentionBackend backend, const torch::Tensor& q,
                                         const AttentionContext& context, double dropout,
                                         bool training) {
  // Probes read the difference map itself, and attention dropout drops entries of that one map:
  // separate kernels would each draw their own mask, so both keep the composed map.
  if (context.need_probs || (dropout > 0.0 && training)) return SoftmaxKernel::kDense;
  // Only an explicit `sdpa` splits the maps: `auto` and `native` keep the composed map that DIFF
  // and GDA have always run. Splitting under `auto` (the device path on GPUs, attnlab's CPU
  // kernels per map on the CPU) would be exact too, but it changes what runs by default and is
  // left until its speed has been measured on both.
  if (backend == AttentionBackend::kSdpa) return select_softmax_kernel(backend, q, context);
  return SoftmaxKernel::kDense;
}

SoftmaxAttentionResult softmax_attention(AttentionBackend backend, const torch::Tensor& q,
                                         const torch::Tensor& k, const torch::Tensor& v,
                                         const torch::Tensor& key_positions,
                                         const AttentionContext& context,
                                         const SoftmaxAttentionOptions& options) {
  return softmax_attention_with(select_softmax_kernel(backend, q, context), q, k, v, key_positions,
                                context, options);
}

SoftmaxAttentionResult softmax_attention_with(SoftmaxKernel kernel, const torch::Tensor& q,
                                              const torch::Tensor& k, const torch::Tensor& v,
                                              const torch::Tensor& key_positions,
                                              const AttentionContext& context,
                                              const SoftmaxAttentionOptions& options) {
  SoftmaxAttentionResult result;
  switch (kernel) {
    case SoftmaxKernel::kDevice:
      result.y = device_softmax_attention(q, k, v, key_positions, context, options);
      return result;
    case SoftmaxKernel::kBlockSparse:
      // Causal / block-causal: skip key blocks that are entirely masked (same result as dense).
      result.y = block_sparse_attention(q, k, v, context.positions, key_positions, context.mask,
                                        {options.scale, options.dropout, options.training});
      return result;
    case SoftmaxKernel::kDense:
      break;
  }
  auto mask = build_attention_mask(context.mask, context.positions, key_positions);
  result.probs = masked_softmax_probs(q, k, mask, options.scale);
  auto dropped = torch::dropout(result.probs, options.dropout, options.training);
  result.y = torch::matmul(dropped.to(q.scalar_type()), v);
  return result;
}

}  // namespace attnlab
