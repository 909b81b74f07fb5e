// Block-sparse (tiled) attention, fused kernel and composed tiles, equals dense masked attention:
// values and float64 gradients, causal and block-causal, many (T, block, tile) combinations, key
// padding, KV-cache offsets, non-ascending key positions; and mha gives the same output on both
// paths.
#include "modules/block_sparse_attention.h"

#include <gtest/gtest.h>

#include "modules/attention_math.h"
#include "modules/masks.h"

using namespace attnlab;

namespace {

torch::Tensor dense(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                    const torch::Tensor& qpos, const torch::Tensor& kpos, const MaskSpec& spec,
                    double scale) {
  auto mask = build_attention_mask(spec, qpos, kpos);
  return torch::matmul(masked_softmax_probs(q, k, mask, scale).to(q.scalar_type()), v);
}

void expect_equal_with_grads_on(bool fused, const MaskSpec& spec, int64_t t_q, int64_t t_k,
                                int64_t tile, const torch::Tensor& qpos,
                                const torch::Tensor& kpos) {
  auto opts = torch::TensorOptions().dtype(torch::kDouble);
  auto q = torch::randn({2, 3, t_q, 4}, opts).requires_grad_(true);
  auto k = torch::randn({2, 3, t_k, 4}, opts).requires_grad_(true);
  auto v = torch::randn({2, 3, t_k, 5}, opts).requires_grad_(true);
  auto w = torch::randn({2, 3, t_q, 5}, opts);
  BlockSparseOptions options;
  options.scale = 0.5;
  options.tile = tile;
  options.fused = fused;
  auto sparse = block_sparse_attention(q, k, v, qpos, kpos, spec, options);
  auto reference = dense(q, k, v, qpos, kpos, spec, 0.5);
  ASSERT_EQ(sparse.sizes(), reference.sizes());
  EXPECT_TRUE(torch::allclose(sparse, reference, 1e-12, 1e-12))
      << mask_kind_name(spec.kind) << " B=" << spec.block_size << " T=" << t_q << "/" << t_k
      << " tile=" << tile << " fused=" << fused;
  auto g_sparse = torch::autograd::grad({(sparse * w).sum()}, {q, k, v});
  auto g_dense = torch::autograd::grad({(reference * w).sum()}, {q, k, v});
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(torch::allclose(g_sparse[i], g_dense[i], 1e-12, 1e-12))
        << "grad " << i << " " << mask_kind_name(spec.kind) << " B=" << spec.block_size;
}

// Both implementations: the fused kernel (used where it applies) and the composed tiles.
void expect_equal_with_grads(const MaskSpec& spec, int64_t t_q, int64_t t_k, int64_t tile,
                             const torch::Tensor& qpos, const torch::Tensor& kpos) {
  for (bool fused : {true, false})
    expect_equal_with_grads_on(fused, spec, t_q, t_k, tile, qpos, kpos);
}

}  // namespace

TEST(BlockSparseAttention, EqualsDenseManySizes) {
  torch::manual_seed(1);
  for (MaskKind kind : {MaskKind::kCausal, MaskKind::kBlockCausal}) {
    for (int64_t length : {1, 7, 16, 33}) {
      for (int64_t block : {1, 3, 4, 8}) {
        for (int64_t tile : {0, 1, 5, 8}) {
          MaskSpec spec;
          spec.kind = kind;
          spec.block_size = block;
          auto pos = torch::arange(length);
          expect_equal_with_grads(spec, length, length, tile, pos, pos);
        }
      }
    }
  }
}

TEST(BlockSparseAttention, KvCacheOffsetsPaddingAndUnsortedKeys) {
  torch::manual_seed(2);
  for (MaskKind kind : {MaskKind::kCausal, MaskKind::kBlockCausal}) {
    MaskSpec spec;
    spec.kind = kind;
    spec.block_size = 4;
    // Decoding: 5 queries at positions 6..10 over 11 keys (6 cached).
    expect_equal_with_grads(spec, 5, 11, 0, torch::arange(6, 11), torch::arange(11));
    expect_equal_with_grads(spec, 5, 11, 2, torch::arange(6, 11), torch::arange(11));
    // Key padding, including a sequence whose early rows see no real key.
    auto keep = torch::ones({2, 12}, torch::kBool);
    keep[1].narrow(0, 0, 6).fill_(false);
    keep[0][7] = false;
    spec.key_padding = keep;
    expect_equal_with_grads(spec, 12, 12, 4, torch::arange(12), torch::arange(12));
    spec.key_padding = torch::Tensor();
    // Non-ascending key positions fall back to all keys per tile (still exact).
    auto kpos = torch::randperm(10);
    expect_equal_with_grads(spec, 10, 10, 3, torch::arange(10), kpos);
  }
}

TEST(BlockSparseAttention, SupportedOnlyWithoutCleanContextOrProbs) {
  MaskSpec spec;
  EXPECT_TRUE(block_sparse_supported(spec, false));
  EXPECT_FALSE(block_sparse_supported(spec, true));
  spec.kind = MaskKind::kBidirectional;
  EXPECT_FALSE(block_sparse_supported(spec, false));
  spec.kind = MaskKind::kBlockCausal;
  spec.block_size = 4;
  EXPECT_TRUE(block_sparse_supported(spec, false));
  spec.clean_context = true;
  EXPECT_FALSE(block_sparse_supported(spec, false));
}

TEST(BlockSparseAttention, MhaSparseAndDensePathsAgree) {
  torch::manual_seed(4);
  AttentionOptions options;
  options.d_model = 16;
  options.n_heads = 4;
  options.n_kv_heads = 2;
  auto mha = make_attention("mha", options);
  mha->to(torch::kDouble);
  auto x = torch::randn({2, 20, 16}, torch::kDouble);
  for (MaskKind kind : {MaskKind::kCausal, MaskKind::kBlockCausal}) {
    AttentionContext context;
    context.mask.kind = kind;
    context.mask.block_size = 4;
    context.positions = torch::arange(20);
    auto sparse = mha->forward(x, context).y;  // block-sparse path
    context.need_probs = true;                 // forces the dense path
    auto dense_out = mha->forward(x, context);
    EXPECT_TRUE(torch::allclose(sparse, dense_out.y, 1e-12, 1e-12)) << mask_kind_name(kind);
    ASSERT_TRUE(dense_out.probs.defined());
  }
}
