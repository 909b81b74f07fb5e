// The fused prefix-attention kernels (BLAS tiles and row kernels) against dense masked attention
// computed in float64: values and gradients of q, k, v for causal prefixes spanning several query
// tiles and key blocks, per-head visible counts with rows that see nothing, wide heads (smaller
// tiles), strided inputs, KV-cache shapes (T_q < T_k), determinism, and bad visible counts.
#include "modules/kernels/prefix_attention.h"

#include <gtest/gtest.h>

#include "modules/attention_math.h"

using namespace attnlab;

namespace {

// visible: [T_q] or [B, H, T_q]; key j is visible to row i iff j < visible_i.
torch::Tensor dense_reference(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, const torch::Tensor& visible, double scale) {
  auto keys = torch::arange(k.size(2));
  auto mask = keys.lt(visible.unsqueeze(-1));  // [T_q, T_k] or [B, H, T_q, T_k]
  return torch::matmul(masked_softmax_probs(q, k, mask, scale), v);
}

struct Inputs {
  torch::Tensor q, k, v, weights;
};

Inputs random_inputs(int64_t b, int64_t h, int64_t t_q, int64_t t_k, int64_t d, int64_t d_v,
                     torch::Dtype dtype) {
  auto opts = torch::TensorOptions().dtype(dtype);
  return {torch::randn({b, h, t_q, d}, opts) * 2, torch::randn({b, h, t_k, d}, opts),
          torch::randn({b, h, t_k, d_v}, opts), torch::randn({b, h, t_q, d_v}, opts)};
}

// Largest error relative to the reference's largest magnitude (at least 1, so that references
// that are zero up to rounding, like the q/k gradients of a single-key softmax, compare
// absolutely).
double max_relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  auto g = got.to(torch::kDouble);
  return ((g - want).abs().max() / want.abs().max().clamp_min(1.0)).item<double>();
}

// The implementations that can run `in`: BLAS tiles always, the row kernels for float32 heads
// with dims that are multiples of 8.
std::vector<PrefixKernel> kernels_for(const Inputs& in) {
  std::vector<PrefixKernel> kernels{PrefixKernel::kBlasTiles};
  if (in.q.scalar_type() == torch::kFloat && in.q.size(3) % 8 == 0 && in.v.size(3) % 8 == 0) {
    kernels.push_back(PrefixKernel::kRows);
  }
  return kernels;
}

// Runs each implementation on `in` (dtype as given) and the dense reference in float64; compares
// the output and the gradients of sum(out · weights).
void expect_matches_reference(const Inputs& in, const torch::Tensor& visible, double scale,
                              double tolerance, const std::string& label) {
  auto q64 = in.q.to(torch::kDouble).requires_grad_(true);
  auto k64 = in.k.to(torch::kDouble).requires_grad_(true);
  auto v64 = in.v.to(torch::kDouble).requires_grad_(true);
  auto want = dense_reference(q64, k64, v64, visible, scale);
  auto want_grads =
      torch::autograd::grad({(want * in.weights.to(torch::kDouble)).sum()}, {q64, k64, v64});
  for (PrefixKernel kernel : kernels_for(in)) {
    const std::string which = label + (kernel == PrefixKernel::kRows ? " rows" : " tiles");
    auto q = in.q.clone().requires_grad_(true), k = in.k.clone().requires_grad_(true);
    auto v = in.v.clone().requires_grad_(true);
    auto out = prefix_attention(q, k, v, visible, scale, kernel);
    ASSERT_EQ(out.sizes(), want.sizes()) << which;
    EXPECT_LT(max_relative_error(out, want), tolerance) << which << " output";
    auto grads = torch::autograd::grad({(out * in.weights).sum()}, {q, k, v});
    const char* names[] = {"grad q", "grad k", "grad v"};
    for (int i = 0; i < 3; ++i) {
      EXPECT_LT(max_relative_error(grads[i], want_grads[i]), tolerance) << which << " " << names[i];
    }
  }
}

}  // namespace

TEST(PrefixAttention, CausalFloat32MatchesFloat64AcrossTilesAndKeyBlocks) {
  ASSERT_TRUE(prefix_attention_supported(torch::ones({1})));  // LibTorch CPU builds carry a BLAS
  torch::manual_seed(0);
  // 150 rows: tiles of 64, 64, 22; prefixes cross key-block boundaries (64, 128) mid-tile.
  for (int64_t length : {1, 63, 65, 150}) {
    auto in = random_inputs(2, 3, length, length, 64, 48, torch::kFloat);
    auto visible = torch::arange(1, length + 1);
    expect_matches_reference(in, visible, 0.125, 2e-5, "causal T=" + std::to_string(length));
  }
}

TEST(PrefixAttention, PerHeadCountsWithEmptyRowsInFloat64) {
  torch::manual_seed(1);
  // Arbitrary (unsorted) counts per (batch, head, row), including 0 and T_k; head dim 128 makes
  // the kernel use 32-row tiles.
  auto in = random_inputs(2, 2, 90, 130, 128, 16, torch::kDouble);
  auto visible = torch::randint(0, 131, {2, 2, 90});
  visible[0][1].narrow(0, 0, 40).zero_();  // a whole tile that sees no key
  visible[1][0][5] = 130;
  expect_matches_reference(in, visible, 0.3, 1e-12, "per-head float64");
  // The same kind of counts in float32 with MoH-sized heads (dim 16), both implementations.
  auto thin = random_inputs(2, 3, 45, 77, 16, 24, torch::kFloat);
  auto counts = torch::randint(0, 78, {2, 3, 45});
  counts[1][2].narrow(0, 3, 9).zero_();
  expect_matches_reference(thin, counts, 0.25, 2e-5, "per-head float32");
}

TEST(PrefixAttention, DecodingShapesAndStridedInputs) {
  torch::manual_seed(2);
  // KV-cache decoding: 3 new rows at positions 97..99 over 100 keys.
  auto in = random_inputs(1, 4, 3, 100, 32, 32, torch::kFloat);
  expect_matches_reference(in, torch::arange(98, 101), 0.2, 2e-5, "decoding");
  // Heads as transposed views of [B, T, H, D] (how projections produce them), and a value
  // tensor whose last dim is strided (copied by the kernel).
  auto q = torch::randn({2, 70, 3, 16}).transpose(1, 2);
  auto k = torch::randn({2, 70, 3, 16}).transpose(1, 2);
  auto v = torch::randn({2, 3, 12, 70}).transpose(2, 3);
  auto visible = torch::arange(1, 71);
  auto strided = prefix_attention(q, k, v, visible, 0.25);
  auto packed = prefix_attention(q.contiguous(), k.contiguous(), v.contiguous(), visible, 0.25);
  EXPECT_TRUE(torch::equal(strided, packed));
  Inputs views{q, k, v, torch::randn({2, 3, 70, 12})};
  expect_matches_reference(views, visible, 0.25, 2e-5, "strided");
}

TEST(PrefixAttention, DeterministicAndChecksCounts) {
  torch::manual_seed(3);
  auto in = random_inputs(2, 6, 128, 128, 64, 64, torch::kFloat);
  auto visible = torch::arange(1, 129);
  auto run = [&](PrefixKernel kernel) {
    auto q = in.q.clone().requires_grad_(true), k = in.k.clone().requires_grad_(true);
    auto v = in.v.clone().requires_grad_(true);
    auto out = prefix_attention(q, k, v, visible, 0.125, kernel);
    auto grads = torch::autograd::grad({(out * in.weights).sum()}, {q, k, v});
    return std::vector<torch::Tensor>{out, grads[0], grads[1], grads[2]};
  };
  for (PrefixKernel kernel : {PrefixKernel::kBlasTiles, PrefixKernel::kRows}) {
    auto first = run(kernel), second = run(kernel);
    for (size_t i = 0; i < first.size(); ++i) EXPECT_TRUE(torch::equal(first[i], second[i])) << i;
  }
  EXPECT_THROW(prefix_attention(in.q.to(torch::kDouble), in.k.to(torch::kDouble),
                                in.v.to(torch::kDouble), visible, 0.1, PrefixKernel::kRows),
               c10::Error);
  EXPECT_THROW(prefix_attention(in.q, in.k, in.v, torch::full({128}, 129), 0.1), c10::Error);
  EXPECT_THROW(prefix_attention(in.q, in.k, in.v, torch::full({128}, -1), 0.1), c10::Error);
  EXPECT_THROW(prefix_attention(in.q, in.k, in.v, torch::arange(1, 100), 0.1), c10::Error);
  EXPECT_FALSE(prefix_attention_supported(torch::ones({1}, torch::kBFloat16)));
}

TEST(PrefixAttention, ActiveRowMaskSkipsRowsExactly) {
  torch::manual_seed(4);
  // MoH's routed heads: only the (token, head) pairs in `active` are computed; the rest are zero
  // with zero gradients. KV-cache shape: 60 queries at positions 20..79 over 80 keys.
  auto in = random_inputs(2, 5, 60, 80, 16, 16, torch::kFloat);
  auto active = torch::rand({2, 60, 5}).lt(0.4);
  active.select(2, 3).fill_(false);  // a head with no active row
  active.select(2, 0).fill_(true);   // and one with all
  auto visible = torch::arange(21, 81);
  auto q = in.q.clone().requires_grad_(true), k = in.k.clone().requires_grad_(true);
  auto v = in.v.clone().requires_grad_(true);
  auto out = prefix_attention(q, k, v, visible, 0.25, PrefixKernel::kAuto, active);
  auto q64 = in.q.to(torch::kDouble).requires_grad_(true);
  auto k64 = in.k.to(torch::kDouble).requires_grad_(true);
  auto v64 = in.v.to(torch::kDouble).requires_grad_(true);
  auto rows = active.permute({0, 2, 1}).unsqueeze(-1).to(torch::kDouble);  // [B, H, T, 1]
  auto want = dense_reference(q64, k64, v64, visible, 0.25) * rows;
  EXPECT_LT(max_relative_error(out, want), 2e-5);
  EXPECT_TRUE(torch::equal(out.select(1, 3), torch::zeros_like(out.select(1, 3))));
  auto grads = torch::autograd::grad({(out * in.weights).sum()}, {q, k, v});
  auto want_grads =
      torch::autograd::grad({(want * in.weights.to(torch::kDouble)).sum()}, {q64, k64, v64});
  for (int i = 0; i < 3; ++i) EXPECT_LT(max_relative_error(grads[i], want_grads[i]), 2e-5) << i;
  EXPECT_TRUE(torch::equal(grads[0].select(1, 3), torch::zeros_like(grads[0].select(1, 3))));
  // The mask needs the row kernels: float64 or the BLAS tiles are refused with a clear error.
  EXPECT_THROW(prefix_attention(q64, k64, v64, visible, 0.25, PrefixKernel::kAuto, active),
               c10::Error);
  EXPECT_THROW(prefix_attention(in.q, in.k, in.v, visible, 0.25, PrefixKernel::kBlasTiles, active),
               c10::Error);
}
