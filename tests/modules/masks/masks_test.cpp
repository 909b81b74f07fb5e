// Masks against brute-force definitions for many (T, block) pairs: causal, bidirectional,
// block-causal (with query/key offsets as in KV-cached decoding), key padding, and the BD3-LM
// clean-context layout against the bd3lms index-based definition (models/dit.py block_diff_mask).
#include "modules/masks.h"

#include <gtest/gtest.h>

#include "common/error.h"

using namespace attnlab;

namespace {

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

bool brute(MaskKind kind, int64_t block, int64_t q, int64_t k) {
  switch (kind) {
    case MaskKind::kCausal:
      return k <= q;
    case MaskKind::kBidirectional:
      return true;
    case MaskKind::kBlockCausal:
      return floor_div(k, block) <= floor_div(q, block);
  }
  return false;
}

// bd3lms block_diff_mask over indices 0..2n-1 (x_t first, x_0 second).
bool bd3lm(int64_t n, int64_t block, int64_t q_idx, int64_t kv_idx) {
  const bool x0_q = q_idx >= n, x0_kv = kv_idx >= n;
  const int64_t block_q = x0_q ? (q_idx - n) / block : q_idx / block;
  const int64_t block_kv = x0_kv ? (kv_idx - n) / block : kv_idx / block;
  const bool diagonal = block_q == block_kv && x0_q == x0_kv;
  const bool offset_block_causal = block_q > block_kv && x0_kv && !x0_q;
  const bool block_causal = block_q >= block_kv && x0_kv && x0_q;
  return diagonal || offset_block_causal || block_causal;
}

}  // namespace

TEST(Masks, PositionalKindsMatchBruteForceManySizes) {
  for (MaskKind kind : {MaskKind::kCausal, MaskKind::kBidirectional, MaskKind::kBlockCausal}) {
    for (int64_t length : {1, 2, 5, 8, 13, 32}) {
      for (int64_t block : {1, 2, 3, 4, 8, 16}) {
        for (int64_t offset : {0, 3}) {  // offset: queries after `offset` cached keys
          MaskSpec spec;
          spec.kind = kind;
          spec.block_size = block;
          auto kpos = torch::arange(length + offset);
          auto qpos = torch::arange(offset, offset + length);
          auto m = build_attention_mask(spec, qpos, kpos);
          ASSERT_EQ(m.sizes(), (std::vector<int64_t>{length, length + offset}));
          auto acc = m.accessor<bool, 2>();
          for (int64_t i = 0; i < length; ++i)
            for (int64_t j = 0; j < length + offset; ++j)
              ASSERT_EQ(acc[i][j], brute(kind, block, i + offset, j))
                  << mask_kind_name(kind) << " T=" << length << " B=" << block << " i=" << i
                  << " j=" << j;
        }
      }
    }
  }
}

TEST(Masks, CleanContextMatchesBd3lmDefinition) {
  for (int64_t n : {1, 4, 6, 12, 16}) {
    for (int64_t block : {1, 2, 3, 4, 16}) {
      MaskSpec spec;
      spec.kind = MaskKind::kBlockCausal;
      spec.block_size = block;
      spec.clean_context = true;
      auto half = torch::arange(n);
      auto pos = torch::cat({half, half});
      auto m = build_attention_mask(spec, pos, pos);
      auto acc = m.accessor<bool, 2>();
      for (int64_t i = 0; i < 2 * n; ++i)
        for (int64_t j = 0; j < 2 * n; ++j)
          ASSERT_EQ(acc[i][j], bd3lm(n, block, i, j))
              << "n=" << n << " B=" << block << " " << i << "," << j;
      // x_0 never sees x_t.
      EXPECT_FALSE(m.narrow(0, n, n).narrow(1, 0, n).any().item<bool>());
    }
  }
}

TEST(Masks, CleanContextRejectsWrongPositions) {
  MaskSpec spec;
  spec.kind = MaskKind::kBlockCausal;
  spec.block_size = 2;
  spec.clean_context = true;
  auto pos = torch::arange(8);  // 0..2n-1 instead of 0..n-1 twice
  EXPECT_ANY_THROW(build_attention_mask(spec, pos, pos));
  EXPECT_THROW(build_attention_mask(spec, torch::arange(7), torch::arange(7)), UserError);
}

TEST(Masks, KeyPaddingCombinesWithEveryKind) {
  auto keep = torch::tensor({1, 1, 0, 1, 0, 1}, torch::kBool).view({1, 6}).repeat({2, 1});
  keep[1][0] = false;
  for (MaskKind kind : {MaskKind::kCausal, MaskKind::kBidirectional, MaskKind::kBlockCausal}) {
    MaskSpec spec;
    spec.kind = kind;
    spec.block_size = 4;
    spec.key_padding = keep;
    auto pos = torch::arange(6);
    auto m = build_attention_mask(spec, pos, pos);
    ASSERT_EQ(m.sizes(), (std::vector<int64_t>{2, 1, 6, 6}));
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t i = 0; i < 6; ++i)
        for (int64_t j = 0; j < 6; ++j)
          EXPECT_EQ(m[b][0][i][j].item<bool>(), brute(kind, 4, i, j) && keep[b][j].item<bool>());
  }
}

TEST(Masks, BlockCausalNeedsBlockSize) {
  MaskSpec spec;
  spec.kind = MaskKind::kBlockCausal;
  EXPECT_THROW(build_attention_mask(spec, torch::arange(4), torch::arange(4)), UserError);
  EXPECT_THROW(parse_mask_kind("blockcausal"), UserError);
}
