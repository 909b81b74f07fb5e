// Masks against brute-force definitions.
#include <gtest/gtest.h>

#include "modules/masks.h"

using namespace attnlab;

TEST(Masks, CausalMatchesBruteForce) {
  MaskSpec spec;
  auto pos = torch::arange(7);
  auto m = positional_mask(spec, pos, pos);
  for (int q = 0; q < 7; ++q)
    for (int k = 0; k < 7; ++k) EXPECT_EQ(m[q][k].item<bool>(), k <= q);
}

TEST(Masks, PrefixVisibleCountsMatchTheMaskRows) {
  // Where the visible keys are a prefix, the count per row is the row's number of visible keys.
  for (MaskKind kind : {MaskKind::kCausal, MaskKind::kBlockCausal, MaskKind::kBidirectional}) {
    MaskSpec spec;
    spec.kind = kind;
    spec.block_size = 4;
    auto keys = torch::arange(23);
    for (int64_t first : {0, 5, 22}) {  // full forward and KV-cache decoding offsets
      auto queries = torch::arange(first, 23);
      auto mask = positional_mask(spec, queries, keys);
      auto counts = prefix_visible_counts(spec, queries, keys);
      ASSERT_TRUE(counts.defined());
      EXPECT_TRUE(torch::equal(counts, mask.sum(-1).to(torch::kLong)))
          << mask_kind_name(kind) << " first " << first;
      // ... and those keys are exactly the first `count` ones.
      auto prefix = torch::arange(23).unsqueeze(0).lt(counts.unsqueeze(1));
      EXPECT_TRUE(torch::equal(prefix, mask)) << mask_kind_name(kind);
    }
  }
  MaskSpec causal;
  EXPECT_FALSE(prefix_visible_counts(causal, torch::arange(5), torch::tensor({0, 2, 1})).defined());
}
