// The device attention path (modules/attention_backend.h) on the CPU: the same code that CUDA
// runs (SDPA, masks built on the tensors' device, zeroed fully-masked rows), compared in float64
// with the dense masked reference for every mask layout the trainer produces: causal over
// in-order positions (is_causal), causal with a KV cache, block-causal, bidirectional, key
// padding with a row that sees no key, and the BD3-LM clean-context layout. Also the selectors'
// rules (all rows, MoH's routed heads, DIFF/GDA's two maps).
#include <gtest/gtest.h>

#include "modules/attention_backend.h"
#include "modules/attention_math.h"
#include "modules/gpt.h"
#include "modules/kernels/prefix_attention.h"
#include "modules/masks.h"

using namespace attnlab;

namespace {

torch::Tensor dense_reference(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, const torch::Tensor& key_positions,
                              const AttentionContext& context, double scale) {
  auto mask = build_attention_mask(context.mask, context.positions, key_positions);
  return torch::matmul(masked_softmax_probs(q, k, mask, scale), v);
}

struct Layout {
  std::string name;
  MaskKind kind;
  int64_t block = 0;
  bool clean_context = false;
  bool padding = false;
  int64_t cached = 0;  // keys before the queries (a KV cache)
  bool in_order = true;
};

void expect_matches_dense(const Layout& layout) {
  torch::manual_seed(11);
  const int64_t batch = 2, heads = 3, dim = 8, length = 12;
  const int64_t t_k = layout.clean_context ? length : length + layout.cached;
  AttentionContext context;
  context.mask.kind = layout.kind;
  context.mask.block_size = layout.block;
  context.mask.clean_context = layout.clean_context;
  context.positions_in_order = layout.in_order;
  torch::Tensor key_positions;
  if (layout.clean_context) {
    auto half = torch::arange(length / 2);
    context.positions = torch::cat({half, half});
    key_positions = context.positions;
  } else {
    key_positions = torch::arange(t_k);
    context.positions = key_positions.narrow(0, layout.cached, length);
    if (layout.cached == 0) context.positions = key_positions;
  }
  if (layout.padding) {
    auto padding = torch::ones({batch, t_k}, torch::kBool);
    padding.index_put_({1, torch::indexing::Slice(0, t_k / 2)}, false);  // row 1: early keys pad
    // Block-causal over padding: the first query rows of batch 1 see no real key at all.
    context.mask.key_padding = padding;
  }
  auto q = torch::randn({batch, heads, length, dim}, torch::kDouble).requires_grad_();
  auto k = torch::randn({batch, heads, t_k, dim}, torch::kDouble).requires_grad_();
  auto v = torch::randn({batch, heads, t_k, dim}, torch::kDouble).requires_grad_();
  const double scale = 1.0 / std::sqrt(static_cast<double>(dim));
  auto y = device_softmax_attention(q, k, v, key_positions, context, {scale, 0.0, false});
  auto upstream = torch::randn_like(y);
  auto grads = torch::autograd::grad({y}, {q, k, v}, {upstream});
  auto ref = dense_reference(q, k, v, key_positions, context, scale);
  auto ref_grads = torch::autograd::grad({ref}, {q, k, v}, {upstream});
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>()) << layout.name;
  EXPECT_LT((y - ref).abs().max().item<double>(), 1e-12) << layout.name;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(torch::isfinite(grads[i]).all().item<bool>()) << layout.name << " grad " << i;
    EXPECT_LT((grads[i] - ref_grads[i]).abs().max().item<double>(), 1e-11)
        << layout.name << " grad " << i;
  }
}

}  // namespace

TEST(DeviceAttention, MatchesDenseOnEveryMaskLayout) {
  const std::vector<Layout> layouts = {
      {"causal in order (is_causal)", MaskKind::kCausal},
      {"causal, positions not marked in order", MaskKind::kCausal, 0, false, false, 0, false},
      {"causal with a 5-key cache", MaskKind::kCausal, 0, false, false, 5},
      {"block causal", MaskKind::kBlockCausal, 4},
      {"block causal with cache", MaskKind::kBlockCausal, 4, false, false, 4},
      {"bidirectional", MaskKind::kBidirectional},
      {"bidirectional with padding", MaskKind::kBidirectional, 0, false, true},
      {"causal with padding (rows without keys)", MaskKind::kCausal, 0, false, true},
      {"block causal with padding", MaskKind::kBlockCausal, 3, false, true},
      {"clean context (BD3-LM)", MaskKind::kBlockCausal, 2, true},
      {"clean context with padding", MaskKind::kBlockCausal, 2, true, true},
  };
  for (const auto& layout : layouts) expect_matches_dense(layout);
}

TEST(DeviceAttention, SelectorRules) {
  auto cpu_q = torch::zeros({1, 1, 4, 8});
  AttentionContext context;
  context.mask.kind = MaskKind::kCausal;
  EXPECT_EQ(select_softmax_kernel(AttentionBackend::kAuto, cpu_q, context),
            SoftmaxKernel::kBlockSparse);
  EXPECT_EQ(select_softmax_kernel(AttentionBackend::kSdpa, cpu_q, context), SoftmaxKernel::kDevice);
  EXPECT_EQ(select_softmax_kernel(AttentionBackend::kNative, cpu_q, context),
            SoftmaxKernel::kBlockSparse);
  context.mask.kind = MaskKind::kBidirectional;
  EXPECT_EQ(select_softmax_kernel(AttentionBackend::kAuto, cpu_q, context), SoftmaxKernel::kDense);
  context.need_probs = true;  // probes always get the dense probabilities
  EXPECT_EQ(select_softmax_kernel(AttentionBackend::kSdpa, cpu_q, context), SoftmaxKernel::kDense);
  EXPECT_FALSE(uses_device_kernels(AttentionBackend::kAuto, cpu_q));
  EXPECT_TRUE(uses_device_kernels(AttentionBackend::kSdpa, cpu_q));
  EXPECT_EQ(parse_attention_backend("sdpa"), AttentionBackend::kSdpa);
  try {
    parse_attention_backend("flash");
    FAIL() << "expected a UserError";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find("model.attention_backend"), std::string::npos);
    EXPECT_NE(std::string(error.what()).find("'flash'"), std::string::npos);
  }
}

namespace {

RoutedKernelChoice routed_choice(AttentionBackend backend, const torch::Tensor& q,
                                 const MaskSpec& spec, bool need_probs = false,
                                 RoutedKernelRequest request = {}) {
  const int64_t length = q.size(2);
  auto positions = torch::arange(length);
  return select_routed_kernel(backend, q, q.size(3), positions, positions, spec, need_probs,
                              request);
}

}  // namespace

// MoH's routed heads: which kernel each backend, device, dtype, head width and mask gets.
TEST(DeviceAttention, RoutedSelectorRules) {
  auto cpu_q = torch::zeros({1, 2, 6, 8});  // float32, head dim 8: the row kernels' case
  // The row kernels need AVX2; without it the same case gets the BLAS tiles.
  const RoutedKernel rows =
      prefix_rows_supported(cpu_q, 8) ? RoutedKernel::kRowMask : RoutedKernel::kGatheredPrefix;
  MaskSpec causal;
  EXPECT_EQ(routed_choice(AttentionBackend::kAuto, cpu_q, causal).kernel, rows);
  EXPECT_TRUE(routed_choice(AttentionBackend::kAuto, cpu_q, causal).visible.defined());
  EXPECT_EQ(routed_choice(AttentionBackend::kNative, cpu_q, causal).kernel, rows);
  // Device kernels compute every row (gathering needs host-side planning), and read nothing on
  // the host to decide.
  EXPECT_EQ(routed_choice(AttentionBackend::kSdpa, cpu_q, causal).kernel, RoutedKernel::kAllRows);
  EXPECT_FALSE(routed_choice(AttentionBackend::kSdpa, cpu_q, causal).visible.defined());
  auto meta_q = torch::zeros({1, 2, 6, 8}, torch::TensorOptions().device(torch::kMeta));
  EXPECT_EQ(routed_choice(AttentionBackend::kAuto, meta_q, causal).kernel, RoutedKernel::kAllRows);
  EXPECT_EQ(select_softmax_kernel(AttentionBackend::kAuto, meta_q, AttentionContext{}),
            SoftmaxKernel::kDevice);
  // float64, or float32 heads the row kernels do not take: gathered rows through the BLAS tiles.
  EXPECT_EQ(routed_choice(AttentionBackend::kAuto, cpu_q.to(torch::kDouble), causal).kernel,
            RoutedKernel::kGatheredPrefix);
  EXPECT_EQ(routed_choice(AttentionBackend::kAuto, torch::zeros({1, 2, 6, 6}), causal).kernel,
            RoutedKernel::kGatheredPrefix);
  // bf16, key padding, active dropout or fused=false: composed tiles.
  EXPECT_EQ(routed_choice(AttentionBackend::kAuto, cpu_q.to(torch::kBFloat16), causal).kernel,
            RoutedKernel::kGatheredTiles);
  MaskSpec padded;
  padded.key_padding = torch::ones({1, 6}, torch::kBool);
  EXPECT_EQ(routed_choice(AttentionBackend::kAuto, cpu_q, padded).kernel,
            RoutedKernel::kGatheredTiles);
  RoutedKernelRequest dropout;
  dropout.dropout = 0.1;
  EXPECT_EQ(routed_choice(AttentionBackend::kAuto, cpu_q, causal, false, dropout).kernel,
            rows);  // dropout set but not training: inactive
  dropout.training = true;
  EXPECT_EQ(routed_choice(AttentionBackend::kAuto, cpu_q, causal, false, dropout).kernel,
            RoutedKernel::kGatheredTiles);
  RoutedKernelRequest composed;
  composed.fused = false;
  EXPECT_EQ(routed_choice(AttentionBackend::kAuto, cpu_q, causal, false, composed).kernel,
            RoutedKernel::kGatheredTiles);
  // Keys whose visibility ids do not ascend: no prefix per row.
  auto shuffled = torch::tensor({0, 2, 1, 3, 5, 4});
  EXPECT_EQ(select_routed_kernel(AttentionBackend::kAuto, cpu_q, 8, torch::arange(6), shuffled,
                                 causal, false, {})
                .kernel,
            RoutedKernel::kGatheredTiles);
  // Every row computed: rows not skippable (MoH's STE router, K = E, sparse_compute off),
  // probes, or the BD3-LM clean-context layout.
  RoutedKernelRequest dense_rows;
  dense_rows.rows_skippable = false;
  EXPECT_EQ(routed_choice(AttentionBackend::kAuto, cpu_q, causal, false, dense_rows).kernel,
            RoutedKernel::kAllRows);
  EXPECT_EQ(routed_choice(AttentionBackend::kAuto, cpu_q, causal, /*need_probs=*/true).kernel,
            RoutedKernel::kAllRows);
  MaskSpec clean;
  clean.kind = MaskKind::kBlockCausal;
  clean.block_size = 2;
  clean.clean_context = true;
  EXPECT_EQ(routed_choice(AttentionBackend::kNative, cpu_q, clean).kernel, RoutedKernel::kAllRows);
}

// DIFF/GDA: the composed difference map unless `sdpa` asks for the device kernels and the maths
// allows two separate softmax attentions.
TEST(DeviceAttention, DifferentialSelectorRules) {
  auto cpu_q = torch::zeros({1, 2, 6, 8});
  auto meta_q = torch::zeros({1, 2, 6, 8}, torch::TensorOptions().device(torch::kMeta));
  AttentionContext context;
  EXPECT_EQ(select_differential_kernel(AttentionBackend::kAuto, cpu_q, context, 0.0, false),
            SoftmaxKernel::kDense);
  EXPECT_EQ(select_differential_kernel(AttentionBackend::kNative, cpu_q, context, 0.0, false),
            SoftmaxKernel::kDense);
  EXPECT_EQ(select_differential_kernel(AttentionBackend::kAuto, meta_q, context, 0.0, false),
            SoftmaxKernel::kDense);
  EXPECT_EQ(select_differential_kernel(AttentionBackend::kSdpa, cpu_q, context, 0.0, false),
            SoftmaxKernel::kDevice);
  EXPECT_EQ(select_differential_kernel(AttentionBackend::kSdpa, meta_q, context, 0.0, false),
            SoftmaxKernel::kDevice);
  // Dropout set but not training: inactive, so the split still applies; in training it does not.
  EXPECT_EQ(select_differential_kernel(AttentionBackend::kSdpa, cpu_q, context, 0.1, false),
            SoftmaxKernel::kDevice);
  EXPECT_EQ(select_differential_kernel(AttentionBackend::kSdpa, cpu_q, context, 0.1, true),
            SoftmaxKernel::kDense);
  context.need_probs = true;
  EXPECT_EQ(select_differential_kernel(AttentionBackend::kSdpa, cpu_q, context, 0.0, false),
            SoftmaxKernel::kDense);
}
