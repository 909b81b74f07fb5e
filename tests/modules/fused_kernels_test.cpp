// The fused float32 RMSNorm kernel against the plain torch formula evaluated in float64: values
// and gradients (x and weight, random upstream gradients) over odd shapes (D not a multiple of 8,
// one row, many row blocks) and non-contiguous inputs; that the fused path really runs for
// float32 and that float64 keeps the torch formula; bitwise-reproducible backward passes.
#include <gtest/gtest.h>

#include "modules/gpt.h"
#include "modules/kernels/rms_norm.h"
#include "modules/kernels/rms_norm_simd.h"

using namespace attnlab;

namespace {

// |actual - expected| <= rtol · (|expected| + max |expected|): relative to each element, with
// the tensor's scale as the floor for elements that cancel to ~0.
::testing::AssertionResult close(const torch::Tensor& actual, const torch::Tensor& expected,
                                 double rtol = 1e-5) {
  if (actual.sizes() != expected.sizes())
    return ::testing::AssertionFailure()
           << "shape " << actual.sizes() << " vs " << expected.sizes();
  auto a = actual.to(torch::kDouble), e = expected.to(torch::kDouble);
  const double scale = e.abs().max().item<double>();
  auto excess = (a - e).abs() - rtol * (e.abs() + scale);
  if (excess.max().item<double>() <= 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "max |diff| " << (a - e).abs().max().item<double>() << " at scale " << scale;
}

std::string node_name(const torch::Tensor& t) {
  return t.grad_fn() ? t.grad_fn()->name() : std::string("<leaf>");
}

torch::Tensor rms_norm_float64(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps) * w;
}

struct RmsNormCase {
  std::vector<int64_t> shape;
  bool transposed;  // feed x.transpose(0, 1) (non-contiguous)
};

}  // namespace

TEST(FusedRmsNorm, MatchesFloat64ValuesAndGradients) {
  ASSERT_TRUE(kernels::rms_norm_simd_available()) << "the fused path needs AVX2 + FMA";
  torch::manual_seed(0);
  const double eps = 1e-5;
  const std::vector<RmsNormCase> cases = {
      {{1, 7}, false},    {{3, 5, 13}, false},    {{2, 1, 33}, false},
      {{6, 384}, false},  {{3, 100, 384}, false}, {{2000, 40}, false},
      {{9, 4, 24}, true}, {{1, 3}, false},        {{4, 3, 1000}, false}};
  for (const auto& c : cases) {
    auto base = torch::randn(c.shape) * 3 + 0.5;
    auto x = (c.transposed ? base.transpose(0, 1) : base).detach().requires_grad_(true);
    auto w = (torch::randn({c.shape.back()}) * 0.5 + 1).requires_grad_(true);
    auto x64 = x.detach().to(torch::kDouble).requires_grad_(true);
    auto w64 = w.detach().to(torch::kDouble).requires_grad_(true);
    auto y = rms_norm(x, w, eps);
    auto y64 = rms_norm_float64(x64, w64, eps);
    EXPECT_NE(node_name(y).find("RmsNormFunction"), std::string::npos) << node_name(y);
    EXPECT_EQ(y.scalar_type(), torch::kFloat);
    EXPECT_TRUE(close(y, y64)) << c.shape;
    auto g = torch::randn(y.sizes());
    y.backward(g);
    y64.backward(g.to(torch::kDouble));
    EXPECT_TRUE(close(x.grad(), x64.grad())) << c.shape;
    EXPECT_TRUE(close(w.grad(), w64.grad())) << c.shape;
  }
}

TEST(FusedRmsNorm, GradientOfXOnlyOrWeightOnly) {
  torch::manual_seed(1);
  auto x = torch::randn({5, 20}).requires_grad_(true);
  auto w = torch::randn({20});  // frozen weight
  auto x64 = x.detach().to(torch::kDouble).requires_grad_(true);
  rms_norm(x, w, 1e-6).sum().backward();
  rms_norm_float64(x64, w.to(torch::kDouble), 1e-6).sum().backward();
  EXPECT_TRUE(close(x.grad(), x64.grad()));
  auto x_frozen = torch::randn({5, 20});
  auto w2 = torch::randn({20}).requires_grad_(true);
  auto w2_64 = w2.detach().to(torch::kDouble).requires_grad_(true);
  rms_norm(x_frozen, w2, 1e-6).sum().backward();
  rms_norm_float64(x_frozen.to(torch::kDouble), w2_64, 1e-6).sum().backward();
  EXPECT_TRUE(close(w2.grad(), w2_64.grad()));
}

TEST(FusedRmsNorm, Float64KeepsTheTorchFormula) {
  torch::manual_seed(2);
  auto x = torch::randn({4, 9}, torch::kDouble).requires_grad_(true);
  auto w = torch::randn({9}, torch::kDouble).requires_grad_(true);
  auto y = rms_norm(x, w, 1e-5);
  EXPECT_EQ(node_name(y).find("RmsNormFunction"), std::string::npos) << node_name(y);
  EXPECT_TRUE(torch::equal(y, rms_norm_float64(x, w, 1e-5)));
  // The module uses the same dispatch: float32 fused, float64 plain torch.
  RmsNorm norm(9, 1e-5);
  EXPECT_NE(node_name(norm(torch::randn({2, 9}))).find("RmsNormFunction"), std::string::npos);
  norm->to(torch::kDouble);
  EXPECT_EQ(node_name(norm(x)).find("RmsNormFunction"), std::string::npos);
}

TEST(FusedRmsNorm, BackwardIsBitwiseReproducibleAcrossRunsAndThreadCounts) {
  torch::manual_seed(3);
  auto x = torch::randn({8, 256, 384});
  auto w = torch::randn({384});
  auto g = torch::randn({8, 256, 384});
  auto run = [&] {
    auto xr = x.clone().requires_grad_(true), wr = w.clone().requires_grad_(true);
    rms_norm(xr, wr, 1e-5).backward(g);
    return std::make_pair(xr.grad(), wr.grad());
  };
  const int threads = torch::get_num_threads();
  torch::set_num_threads(2);
  auto [gx1, gw1] = run();
  auto [gx2, gw2] = run();
  torch::set_num_threads(1);
  auto [gx3, gw3] = run();
  torch::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(gx1, gx2));
  EXPECT_TRUE(torch::equal(gw1, gw2));
  // Fixed row blocks summed in a fixed order: the thread count does not change the bits either.
  EXPECT_TRUE(torch::equal(gx1, gx3));
  EXPECT_TRUE(torch::equal(gw1, gw3));
}
