// The fused GELU-tanh kernel against torch::gelu(x, "tanh") evaluated in float64: values and
// gradients over a wide input range (including |x| large enough to saturate tanh), odd sizes
// that leave vector tails, non-contiguous inputs, and the float64 fallback being exactly torch's.
#include "modules/kernels/gelu_tanh.h"

#include <gtest/gtest.h>

using namespace attnlab;

TEST(GeluTanh, MatchesFloat64ValuesAndGradients) {
  torch::manual_seed(0);
  for (int64_t n : {1, 7, 33, 100003}) {
    auto x = (torch::randn({n}) * 4).requires_grad_(true);
    auto x64 = x.detach().to(torch::kDouble).requires_grad_(true);
    auto y = gelu_tanh(x);
    auto y64 = torch::gelu(x64, "tanh");
    // Float32 rounding of the result, not of intermediate cancellations.
    EXPECT_TRUE(torch::allclose(y.to(torch::kDouble), y64, 1e-6, 1e-6))
        << (y.to(torch::kDouble) - y64).abs().max();
    auto g = torch::randn({n});
    y.backward(g);
    y64.backward(g.to(torch::kDouble));
    EXPECT_TRUE(torch::allclose(x.grad().to(torch::kDouble), x64.grad(), 1e-6, 1e-6))
        << (x.grad().to(torch::kDouble) - x64.grad()).abs().max();
  }
  auto extremes = torch::tensor({-1e4f, -30.f, -9.f, 0.f, 9.f, 30.f, 1e4f});
  auto y = gelu_tanh(extremes);
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  EXPECT_TRUE(torch::allclose(y, torch::gelu(extremes, "tanh"), 1e-6, 1e-6));
}

TEST(GeluTanh, NonContiguousInputAndFloat64Fallback) {
  auto x = torch::randn({6, 8}).t();  // non-contiguous
  EXPECT_TRUE(torch::allclose(gelu_tanh(x), torch::gelu(x, "tanh"), 1e-5, 1e-6));
  auto xd = torch::randn({50}, torch::kDouble);
  EXPECT_TRUE(torch::equal(gelu_tanh(xd), torch::gelu(xd, "tanh")));
}
