// Softmax kernel selection and the device kernel path; see attention_backend.h.
#include "modules/attention_backend.h"

#include "common/error.h"
#include "modules/attention_math.h"
#include "modules/block_sparse_attention.h"
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

SoftmaxAttentionResult softmax_attention(AttentionBackend backend, const torch::Tensor& q,
                                         const torch::Tensor& k, const torch::Tensor& v,
                                         const torch::Tensor& key_positions,
                                         const AttentionContext& context,
                                         const SoftmaxAttentionOptions& options) {
  SoftmaxAttentionResult result;
  switch (select_softmax_kernel(backend, q, context)) {
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
