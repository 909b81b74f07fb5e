// LSSA / LSSAR numerics: overflow safety at T = 1024, 0/0 rows, KV-cached decoding equal to the
// full forward (absolute N_i and free rows), and float64 finite-difference gradient checks.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "modules/attention/softplus_attention.h"
#include "modules/attention_entry.h"
#include "modules/masks.h"

using namespace attnlab;

namespace {

// The re-weighting exactly as written in the paper, no max-division: overflows in float32.
torch::Tensor naive_lssar(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& mask,
                          const torch::Tensor& positions, double power) {
  auto qh = q / q.norm(2, -1, true);
  auto kh = k / k.norm(2, -1, true);
  auto m = mask.to(q.scalar_type());
  auto n = m.sum(-1, true);
  auto a = torch::softplus(std::log(static_cast<double>(q.size(-1))) * n.log() *
                           torch::matmul(qh, kh.transpose(-2, -1))) *
           m;
  a = a / a.sum(-1, true);
  auto offset = (positions >= 3).to(q.scalar_type()).view({-1, 1});
  auto r = torch::relu(a * n - offset).pow(power);
  return r / r.sum(-1, true);
}

std::shared_ptr<AttentionImpl> make_module(const std::string& name, int64_t d_model,
                                           int64_t heads) {
  AttentionOptions options;
  options.d_model = d_model;
  options.n_heads = heads;
  options.n_kv_heads = heads;
  auto module = make_attention(name, options);
  module->to(torch::kDouble);
  return module;
}

}  // namespace

TEST(Softplus, LssarFiniteAtT1024WithConcentratedRows) {
  const int64_t length = 1024, dim = 16;
  torch::manual_seed(3);
  // Every query points at key 0 and away from all other keys: each row puts almost all of its
  // weight on one key, so A·N ≈ N and (A·N − 1)^15 exceeds float32's range for N > ~371.
  auto e1 = torch::zeros({dim});
  e1[0] = 1.0;
  auto q = (e1 + 0.05 * torch::randn({1, 2, length, dim}));
  auto k = (-e1 + 0.3 * torch::randn({1, 2, length, dim}));
  k.select(2, 0).copy_(e1.expand({1, 2, dim}));
  auto positions = torch::arange(length);
  MaskSpec spec;
  auto mask = build_attention_mask(spec, positions, positions);
  SoftplusAttentionOptions options;
  options.reweight = true;

  auto naive32 = naive_lssar(q, k, mask, positions, 15.0);
  ASSERT_FALSE(torch::isfinite(naive32).all().item<bool>()) << "test setup must overflow naively";
  auto ours = softplus_attention_probs(q, k, mask, positions, options);
  ASSERT_EQ(ours.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::isfinite(ours).all().item<bool>());
  auto reference = naive_lssar(q.to(torch::kDouble), k.to(torch::kDouble), mask, positions, 15.0);
  ASSERT_TRUE(torch::isfinite(reference).all().item<bool>());
  EXPECT_LT((ours.to(torch::kDouble) - reference).abs().max().item<double>(), 1e-5);
  // Rows are distributions over visible keys.
  EXPECT_LT((ours.sum(-1) - 1).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(ours.masked_select(mask.logical_not()).abs().sum().item<double>(), 0.0);
}

TEST(Softplus, RowsWithNoWeightAboveUniformAreZero) {
  // Identical keys: every weight equals 1/N exactly when N is a power of two, so A·N − 1 = 0 on
  // every entry (0/0 in the formula) -> zero row. Rows 0..2 are free (offset 0) -> uniform.
  auto q = torch::randn({1, 1, 8, 4}, torch::kDouble);
  auto k = torch::ones({1, 1, 8, 4}, torch::kDouble);
  auto positions = torch::arange(8);
  MaskSpec spec;
  auto mask = build_attention_mask(spec, positions, positions);
  SoftplusAttentionOptions options;
  options.reweight = true;
  auto probs = softplus_attention_probs(q, k, mask, positions, options)[0][0];
  EXPECT_TRUE(torch::isfinite(probs).all().item<bool>());
  for (int64_t row : {3, 7}) EXPECT_EQ(probs[row].abs().sum().item<double>(), 0.0) << row;
  for (int64_t row : {0, 1, 2})
    EXPECT_NEAR(probs[row][0].item<double>(), 1.0 / static_cast<double>(row + 1), 1e-12);
}

TEST(Softplus, KvCacheDecodeEqualsFullForward) {
  for (const std::string name : {"lssa", "lssar"}) {
    torch::manual_seed(11);
    auto module = make_module(name, 16, 2);
    const int64_t length = 10;
    auto x = torch::randn({2, length, 16}, torch::kDouble);
    AttentionContext full;
    full.positions = torch::arange(length);
    auto expected = module->forward(x, full).y;
    // Causal, uneven chunks (the first chunks cover the 3 free rows).
    KVCache cache;
    int64_t start = 0;
    for (int64_t chunk : {1, 1, 2, 3, 3}) {
      AttentionContext step;
      step.positions = torch::arange(start, start + chunk);
      step.cache = &cache;
      auto y = module->forward(x.narrow(1, start, chunk), step).y;
      EXPECT_LT((y - expected.narrow(1, start, chunk)).abs().max().item<double>(), 1e-12)
          << name << " chunk at " << start;
      start += chunk;
    }
    // Block-causal with block 3: each block first without committing, then committing.
    AttentionContext block_full;
    block_full.mask.kind = MaskKind::kBlockCausal;
    block_full.mask.block_size = 3;
    block_full.positions = torch::arange(length);
    auto block_expected = module->forward(x, block_full).y;
    KVCache block_cache;
    for (int64_t s = 0; s < length; s += 3) {
      const int64_t n = std::min<int64_t>(3, length - s);
      for (bool commit : {false, true}) {
        AttentionContext step = block_full;
        step.positions = torch::arange(s, s + n);
        step.cache = &block_cache;
        step.cache_commit = commit;
        auto y = module->forward(x.narrow(1, s, n), step).y;
        EXPECT_LT((y - block_expected.narrow(1, s, n)).abs().max().item<double>(), 1e-12)
            << name << " block at " << s << " commit " << commit;
        EXPECT_EQ(block_cache.length(), commit ? s + n : s);
      }
    }
  }
}

TEST(Softplus, GradientsMatchFiniteDifferencesFloat64) {
  for (const std::string name : {"lssa", "lssar"}) {
    for (MaskKind kind : {MaskKind::kCausal, MaskKind::kBlockCausal, MaskKind::kBidirectional}) {
      torch::manual_seed(5);
      auto module = make_module(name, 8, 2);
      auto x = torch::randn({1, 6, 8}, torch::kDouble).requires_grad_(true);
      auto w = torch::randn({1, 6, 8}, torch::kDouble);
      AttentionContext context;
      context.mask.kind = kind;
      context.mask.block_size = 2;
      context.positions = torch::arange(6);
      auto loss_of = [&](const torch::Tensor& input) {
        return (module->forward(input, context).y * w).sum();
      };
      loss_of(x).backward();
      auto analytic = x.grad().clone();
      auto numeric = torch::zeros_like(analytic);
      const double eps = 1e-6;
      torch::NoGradGuard no_grad;
      auto flat = x.detach().clone().view({-1});
      for (int64_t i = 0; i < flat.numel(); ++i) {
        auto plus = flat.clone(), minus = flat.clone();
        plus[i] += eps;
        minus[i] -= eps;
        numeric.view({-1})[i] = (loss_of(plus.view_as(x)) - loss_of(minus.view_as(x))) / (2 * eps);
      }
      EXPECT_TRUE(torch::allclose(analytic, numeric, 1e-5, 1e-7))
          << name << " " << mask_kind_name(kind) << " max diff "
          << (analytic - numeric).abs().max().item<double>();
    }
  }
}

TEST(Softplus, ParameterNamesMatchMha) {
  auto lssa = make_module("lssar", 8, 2);
  auto mha = make_module("mha", 8, 2);
  std::vector<std::string> a, b;
  for (const auto& p : lssa->named_parameters()) a.push_back(p.key());
  for (const auto& p : mha->named_parameters()) b.push_back(p.key());
  EXPECT_EQ(a, b);
}

TEST(Softplus, RejectsPowerBelowOne) {
  // When the config is bound (attention.power names the key) and when the module is built from
  // options made in code.
  EXPECT_THROW(bind_attention_options("lssar", YAML::Load("{power: 0.5}")), UserError);
  AttentionOptions options;
  options.d_model = 8;
  options.n_heads = 2;
  options.module_options = LssarModuleOptions().power(0.5);
  EXPECT_THROW(make_attention("lssar", options), UserError);
}
