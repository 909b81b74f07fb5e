// The fused float32 RMSNorm and RoPE (rotate-half) kernels against the plain torch formulas
// evaluated in float64: values and gradients (x and weight, random upstream gradients) over odd
// shapes (D not a multiple of 8, one row, T = 1), non-contiguous inputs, positions with an offset
// (KV-cache decoding) or repeated; that the fused paths really run for float32 and that float64
// keeps the torch path; bitwise-reproducible backward passes; and a whole GPT step against the
// same model in float64.
#include <gtest/gtest.h>

#include "modules/gpt.h"
#include "modules/kernels/rms_norm.h"
#include "modules/kernels/rms_norm_simd.h"
#include "modules/kernels/rope_rotate.h"
#include "modules/kernels/rope_rotate_simd.h"
#include "modules/rope.h"
#include "tests/support/tiny_gpt.h"

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

namespace {

struct RopeCase {
  int64_t b, h, t, d;
  int64_t start;  // positions start .. start + T - 1
  double theta;
};

// x as attention produces it: a [B, T, H, D] projection viewed as [B, H, T, D].
torch::Tensor heads_view(int64_t b, int64_t h, int64_t t, int64_t d) {
  return torch::randn({b, t, h, d}).transpose(1, 2);
}

void expect_rope_matches_float64(const torch::Tensor& x_in, const torch::Tensor& positions,
                                 double theta, const std::string& what) {
  auto x = x_in.detach().requires_grad_(true);
  auto x64 = x_in.detach().to(torch::kDouble).requires_grad_(true);
  auto y = apply_rope(x, positions, theta);
  auto y64 = apply_rope(x64, positions, theta);  // float64: the plain torch formula
  EXPECT_NE(node_name(y).find("RopeRotateHalfFunction"), std::string::npos) << node_name(y);
  EXPECT_EQ(node_name(y64).find("RopeRotateHalfFunction"), std::string::npos) << node_name(y64);
  EXPECT_TRUE(y.is_contiguous()) << what;
  EXPECT_TRUE(close(y, y64)) << what;
  auto g = torch::randn(y.sizes());
  y.backward(g);
  y64.backward(g.to(torch::kDouble));
  EXPECT_TRUE(close(x.grad(), x64.grad())) << what;
}

}  // namespace

TEST(FusedRope, MatchesFloat64ValuesAndGradients) {
  ASSERT_TRUE(kernels::rope_rotate_simd_available()) << "the fused path needs AVX2 + FMA";
  torch::manual_seed(4);
  const std::vector<RopeCase> cases = {
      {2, 3, 5, 8, 0, 1e4},   {1, 1, 1, 6, 0, 1e4},      {2, 4, 7, 20, 0, 1e4},
      {3, 6, 64, 64, 0, 1e4}, {1, 2, 1, 64, 37, 1e4},    {2, 2, 9, 34, 1000, 1e4},
      {1, 3, 17, 2, 5, 1e4},  {2, 2, 33, 64, 4000, 5e5}, {1, 1, 300, 16, 0, 1e4}};
  for (const auto& c : cases) {
    auto positions = torch::arange(c.start, c.start + c.t, torch::kLong);
    const std::string what = "B" + std::to_string(c.b) + " H" + std::to_string(c.h) + " T" +
                             std::to_string(c.t) + " D" + std::to_string(c.d) + " start " +
                             std::to_string(c.start);
    expect_rope_matches_float64(torch::randn({c.b, c.h, c.t, c.d}), positions, c.theta,
                                what + " contiguous");
    expect_rope_matches_float64(heads_view(c.b, c.h, c.t, c.d), positions, c.theta,
                                what + " transposed");
  }
}

TEST(FusedRope, OtherLayoutsAndPositions) {
  torch::manual_seed(5);
  // A q slice of a fused qkv projection (as MoH builds it): strided, not dense.
  auto qkv = torch::randn({2, 10, 3, 4, 16}).permute({2, 0, 3, 1, 4});
  auto positions = torch::arange(10, torch::kLong);
  expect_rope_matches_float64(qkv[0], positions, 1e4, "qkv slice");
  // D not the unit-stride dimension: made contiguous first.
  expect_rope_matches_float64(torch::randn({2, 3, 12, 7}).transpose(2, 3), torch::arange(7), 1e4,
                              "D strided");
  // Repeated, unsorted positions (the BD3-LM layout: two halves at the same positions).
  auto repeated = torch::cat({torch::arange(6), torch::arange(6)}).to(torch::kLong);
  expect_rope_matches_float64(heads_view(2, 2, 12, 10), repeated, 1e4, "repeated positions");
  expect_rope_matches_float64(heads_view(1, 2, 4, 8), torch::tensor({9, 3, 0, 7}), 1e4,
                              "unsorted positions");
}

TEST(FusedRope, GradientKeepsTheInputLayout) {
  // x is a transposed [B, T, H, D] projection: grad_x comes back in that memory layout, so the
  // backward of the transpose and view in front of RoPE costs no copy.
  auto x = heads_view(2, 3, 8, 16).requires_grad_(true);
  apply_rope(x, torch::arange(8), 1e4).sum().backward();
  EXPECT_EQ(x.grad().strides(), x.strides());
  EXPECT_TRUE(x.grad().transpose(1, 2).is_contiguous());
}

TEST(FusedRope, OtherDtypesAndTheInterleavedStyleKeepTheTorchFormula) {
  auto x = torch::randn({1, 2, 4, 8}).requires_grad_(true);
  auto positions = torch::arange(4);
  auto interleaved = apply_rope(x, positions, 1e4, RopeStyle::kInterleaved);
  EXPECT_EQ(node_name(interleaved).find("RopeRotateHalfFunction"), std::string::npos);
  auto x64 = x.detach().to(torch::kDouble).requires_grad_(true);
  EXPECT_EQ(node_name(apply_rope(x64, positions, 1e4)).find("RopeRotateHalfFunction"),
            std::string::npos);
  EXPECT_FALSE(rope_rotate_half_supported(x.to(torch::kBFloat16), positions));
  EXPECT_FALSE(rope_rotate_half_supported(x, torch::arange(5)));  // positions must match T
}

TEST(FusedRope, BackwardIsBitwiseReproducible) {
  torch::manual_seed(6);
  auto x = heads_view(4, 6, 256, 64);
  auto g = torch::randn({4, 6, 256, 64});
  auto positions = torch::arange(3, 259);
  auto run = [&] {
    auto xr = x.detach().clone().requires_grad_(true);
    auto y = apply_rope(xr, positions, 1e4);
    y.backward(g);
    return std::make_pair(y.detach(), xr.grad());
  };
  auto [y1, g1] = run();
  auto [y2, g2] = run();
  EXPECT_TRUE(torch::equal(y1, y2));
  EXPECT_TRUE(torch::equal(g1, g2));
}

TEST(FusedKernels, GptStepMatchesTheFloat64Model) {
  // The whole model (fused RMSNorm, RoPE and GELU in float32) against a float64 copy (torch
  // formulas throughout): logits and every parameter's gradient.
  torch::manual_seed(7);
  const GptOptions o = attnlab::testing::tiny_gpt_options(40, 48, 2, 4, 32);
  Gpt model(o), model64(o);
  {
    torch::NoGradGuard no_grad;
    auto src = model->named_parameters();
    for (auto& item : model64->named_parameters()) item.value().copy_(src[item.key()]);
  }
  model64->to(torch::kDouble);
  auto tokens = torch::randint(0, 40, {2, 20}, torch::kLong);
  auto logits = model->forward(tokens).logits;
  auto logits64 = model64->forward(tokens).logits;
  EXPECT_TRUE(close(logits, logits64, 1e-4));
  logits.pow(2).mean().backward();
  logits64.pow(2).mean().backward();
  auto grads64 = model64->named_parameters();
  for (auto& item : model->named_parameters())
    EXPECT_TRUE(close(item.value().grad(), grads64[item.key()].grad(), 1e-4)) << item.key();
}
