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
