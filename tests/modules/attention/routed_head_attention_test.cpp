// routed_head_attention (MoH's active-rows-only path) against dense masked attention computed
// row by row from the definition: every mask kind, small tiles (so the per-tile key prefixes
// matter), key padding, a KV-cache offset, uneven head loads, and gradients in float64; each of
// the kernels select_routed_kernel can pick (fused rows, gathered tiles, all rows on the device
// path) gives the same result.
#include "modules/routed_head_attention.h"

#include <gtest/gtest.h>

#include "modules/attention_math.h"
#include "modules/masks.h"

using namespace attnlab;

namespace {

struct Case {
  MaskKind kind;
  int64_t block_size, tile, cached;  // cached: keys before the queries (KV cache)
  bool padding;
};

// Dense reference: full masked attention, then zero the inactive (token, head) rows.
torch::Tensor reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& active, const torch::Tensor& qpos,
                        const torch::Tensor& kpos, const MaskSpec& spec, double scale) {
  auto mask = build_attention_mask(spec, qpos, kpos);
  auto out = torch::matmul(masked_softmax_probs(q, k, mask, scale), v);
  return out * active.permute({0, 2, 1}).unsqueeze(-1).to(out.dtype());
}

}  // namespace

TEST(RoutedHeadAttention, EqualsDenseAttentionOnActiveRowsAndZeroElsewhere) {
  const Case cases[] = {
      {MaskKind::kCausal, 0, 7, 0, false},       {MaskKind::kCausal, 0, 64, 0, true},
      {MaskKind::kBlockCausal, 8, 5, 0, false},  {MaskKind::kBlockCausal, 4, 16, 0, true},
      {MaskKind::kBidirectional, 0, 9, 0, true}, {MaskKind::kCausal, 0, 6, 11, false},
      {MaskKind::kBlockCausal, 8, 3, 16, true},
  };
  int64_t checked = 0;
  for (const Case& c : cases) {
    torch::manual_seed(checked + 3);
    const int64_t batch = 2, heads = 5, length = 37, dim = 6, key_length = length + c.cached;
    auto opts = torch::TensorOptions().dtype(torch::kDouble);
    auto q = torch::randn({batch, heads, length, dim}, opts).requires_grad_(true);
    auto k = torch::randn({batch, heads, key_length, dim}, opts).requires_grad_(true);
    auto v = torch::randn({batch, heads, key_length, dim + 1}, opts).requires_grad_(true);
    // Uneven loads: head 0 nearly always active, head 4 rarely, one head never in batch 1.
    auto load = torch::tensor({0.95, 0.5, 0.3, 0.6, 0.1}, opts);
    auto active = torch::rand({batch, length, heads}, opts).lt(load);
    active.select(0, 1).select(-1, 2).fill_(false);
    auto kpos = torch::arange(key_length);
    auto qpos = kpos.narrow(0, c.cached, length);
    MaskSpec spec;
    spec.kind = c.kind;
    spec.block_size = c.block_size;
    if (c.padding) {
      spec.key_padding = torch::ones({batch, key_length}, torch::kBool);
      spec.key_padding.select(0, 0).narrow(0, key_length - 4, 4).fill_(false);
      spec.key_padding.select(0, 1).narrow(0, 0, 2).fill_(false);
    }
    const double scale = 0.4;
    auto want = reference(q, k, v, active, qpos, kpos, spec, scale);
    auto weights = torch::randn_like(want);
    auto grads_want = torch::autograd::grad({(want * weights).sum()}, {q, k, v});
    // The fused kernel (where it applies), composed tiles, and every row through the device
    // path (model.attention_backend=sdpa: select_routed_kernel's kAllRows).
    const std::pair<bool, AttentionBackend> variants[] = {{true, AttentionBackend::kAuto},
                                                          {false, AttentionBackend::kAuto},
                                                          {true, AttentionBackend::kSdpa}};
    for (const auto& [fused, backend] : variants) {
      const bool sdpa = backend == AttentionBackend::kSdpa;
      auto got = routed_head_attention(q, k, v, active, qpos, kpos, spec,
                                       {scale, 0.0, false, c.tile, fused, backend});
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_TRUE(torch::allclose(got, want, 1e-12, 1e-12))
          << "case " << checked << " fused " << fused << " sdpa " << sdpa << ": max diff "
          << (got - want).abs().max().item<double>();
      auto grads_got = torch::autograd::grad({(got * weights).sum()}, {q, k, v});
      for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(torch::allclose(grads_got[i], grads_want[i], 1e-11, 1e-12))
            << "case " << checked << " fused " << fused << " sdpa " << sdpa << " grad " << i;
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, 7);
}

TEST(RoutedHeadAttention, NoActiveRowGivesZeros) {
  auto q = torch::randn({1, 3, 8, 4}), k = torch::randn({1, 3, 8, 4}),
       v = torch::randn({1, 3, 8, 4});
  auto active = torch::zeros({1, 8, 3}, torch::kBool);
  auto positions = torch::arange(8);
  auto out = routed_head_attention(q, k, v, active, positions, positions, MaskSpec{}, {0.5});
  EXPECT_EQ(out.abs().sum().item<float>(), 0.0f);
}

TEST(RoutedHeadAttention, SharedAndRoutedFusedEqualsComposedInFloat32) {
  // MoH's whole head set: the fused row-mask call against the composed path (block-sparse shared
  // heads + gathered routed rows), every mask kind the fused call takes, with a KV-cache offset.
  const MaskKind kinds[] = {MaskKind::kCausal, MaskKind::kBlockCausal, MaskKind::kBidirectional};
  for (MaskKind kind : kinds) {
    torch::manual_seed(static_cast<int>(kind) + 11);
    const int64_t batch = 2, heads = 6, shared = 2, length = 50, cached = 7, dim = 16;
    const int64_t key_length = length + cached;
    auto q = torch::randn({batch, heads, length, dim}).requires_grad_(true);
    auto k = torch::randn({batch, heads, key_length, dim}).requires_grad_(true);
    auto v = torch::randn({batch, heads, key_length, dim}).requires_grad_(true);
    auto active = torch::rand({batch, length, heads - shared}).lt(0.5);
    auto kpos = torch::arange(key_length);
    auto qpos = kpos.narrow(0, cached, length);
    MaskSpec spec;
    spec.kind = kind;
    spec.block_size = 8;
    auto weights = torch::randn({batch, heads, length, dim});
    // fused, composed, and every row through the device path (attention_backend=sdpa).
    std::vector<torch::Tensor> results[3];
    for (int variant = 0; variant < 3; ++variant) {
      RoutedAttentionOptions options;
      options.scale = 0.25;
      options.fused = variant == 0;
      if (variant == 2) options.backend = AttentionBackend::kSdpa;
      auto out = shared_and_routed_attention(q, k, v, shared, active, qpos, kpos, spec, options);
      auto grads = torch::autograd::grad({(out * weights).sum()}, {q, k, v});
      results[variant] = {out, grads[0], grads[1], grads[2]};
    }
    for (int variant = 1; variant < 3; ++variant) {
      for (int i = 0; i < 4; ++i) {
        EXPECT_TRUE(torch::allclose(results[0][i], results[variant][i], 1e-4, 1e-5))
            << mask_kind_name(kind) << " variant " << variant << " tensor " << i << " max diff "
            << (results[0][i] - results[variant][i]).abs().max().item<double>();
      }
    }
  }
}
