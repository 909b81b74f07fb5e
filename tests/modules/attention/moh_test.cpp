// MoH (docs/methods.md §1): gradients, causality, determinism, degenerate head splits, the sparse
// (active rows only) path against the dense one, the balance loss, statistics, KV-cache decoding
// and the MHA -> MoH conversion.
#include "modules/attention/moh.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "modules/attention/mha.h"
#include "modules/attention_entry.h"
#include "tests/modules/attention/attention_test_util.h"

using namespace attnlab;
using namespace attnlab::attention_test;

namespace {

YAML::Node moh_params(int64_t shared, int64_t k, const std::string& router = "learned") {
  YAML::Node p;
  p["shared_heads"] = shared;
  p["routed_k"] = k;
  p["router"] = router;
  return p;
}

struct Split {
  int64_t heads, shared, k;
  std::string router;
};

}  // namespace

TEST(Moh, GradientsMatchFiniteDifferences) {
  // Shared + routed, no shared heads, all shared (K = 0), h_s = 1 (constant shared gate), qnorm.
  for (const Split& s :
       {Split{4, 2, 1, "learned"}, Split{4, 0, 2, "learned"}, Split{4, 4, 0, "learned"},
        Split{4, 1, 2, "learned"}, Split{4, 1, 2, "qnorm"}}) {
    for (bool training : {true, false}) {
      // qnorm in training uses a straight-through estimator: deliberately not the derivative of
      // its forward (checked against the Python reference instead).
      if (s.router == "qnorm" && training) continue;
      torch::manual_seed(1);
      auto module = make("moh", 8, s.heads, moh_params(s.shared, s.k, s.router));
      module->train(training);
      auto x = torch::randn({2, 5, 8});
      const double error = gradient_check_error(*module, x, context(5));
      EXPECT_LT(error, 1e-7) << "h=" << s.heads << " hs=" << s.shared << " K=" << s.k << " "
                             << s.router << " training=" << training;
    }
  }
}

TEST(Moh, CausalOutputIgnoresFutureTokens) {
  torch::manual_seed(2);
  auto module = make("moh", 16, 4, moh_params(1, 2));
  module->eval();
  auto x = torch::randn({2, 9, 16});
  auto y = module->forward(x, context(9)).y;
  auto x2 = x.clone();
  x2.narrow(1, 6, 3).normal_();  // change tokens 6..8
  auto y2 = module->forward(x2, context(9)).y;
  EXPECT_TRUE(torch::allclose(y.narrow(1, 0, 6), y2.narrow(1, 0, 6), 1e-6, 1e-6));
  EXPECT_FALSE(torch::allclose(y.narrow(1, 6, 3), y2.narrow(1, 6, 3), 1e-3, 1e-3));
  // Bidirectional: the past does change.
  auto yb = module->forward(x, context(9, "bidirectional")).y;
  auto yb2 = module->forward(x2, context(9, "bidirectional")).y;
  EXPECT_FALSE(torch::allclose(yb.narrow(1, 0, 6), yb2.narrow(1, 0, 6), 1e-3, 1e-3));
}

TEST(Moh, DeterministicForSameSeed) {
  auto build_and_run = [] {
    torch::manual_seed(3);
    auto module = make("moh", 16, 4, moh_params(2, 1));
    module->train();
    auto x = torch::randn({2, 7, 16});
    auto out = module->forward(x, context(7));
    return std::make_pair(out.y, out.aux_losses.at("moh_balance"));
  };
  auto [y1, a1] = build_and_run();
  auto [y2, a2] = build_and_run();
  EXPECT_TRUE(torch::equal(y1, y2));
  EXPECT_TRUE(torch::equal(a1, a2));
}

TEST(Moh, SparsePathEqualsDensePath) {
  for (const Split& s :
       {Split{6, 2, 2, "learned"}, Split{6, 0, 3, "learned"}, Split{6, 2, 1, "qnorm"}}) {
    torch::manual_seed(4);
    auto sparse = make("moh", 24, s.heads, moh_params(s.shared, s.k, s.router));
    YAML::Node dense_params = moh_params(s.shared, s.k, s.router);
    dense_params["sparse_compute"] = false;
    auto dense = make("moh", 24, s.heads, dense_params);
    {
      torch::NoGradGuard no_grad;
      auto src = sparse->named_parameters();
      for (auto& p : dense->named_parameters()) p.value().copy_(src[p.key()]);
    }
    const bool training = s.router == "learned";  // qnorm sparse only in eval (STE needs all)
    sparse->train(training);
    dense->train(training);
    auto x = torch::randn({3, 10, 24}, torch::kDouble);
    sparse->to(torch::kDouble);
    dense->to(torch::kDouble);
    auto xs = x.clone().requires_grad_(true), xd = x.clone().requires_grad_(true);
    auto ys = sparse->forward(xs, context(10)).y;
    auto yd = dense->forward(xd, context(10)).y;
    EXPECT_TRUE(torch::allclose(ys, yd, 1e-12, 1e-12)) << (ys - yd).abs().max();
    ys.pow(2).sum().backward();
    yd.pow(2).sum().backward();
    EXPECT_TRUE(torch::allclose(xs.grad(), xd.grad(), 1e-12, 1e-12));
    auto dense_params_now = dense->named_parameters();
    for (auto& p : sparse->named_parameters())
      EXPECT_TRUE(torch::allclose(p.value().grad(), dense_params_now[p.key()].grad(), 1e-11, 1e-12))
          << p.key();
  }
}

TEST(Moh, BalanceLossOnlyInTrainingAndMatchesDefinition) {
  torch::manual_seed(5);
  auto module = make("moh", 24, 6, moh_params(2, 2));
  auto* moh = dynamic_cast<MohAttentionImpl*>(module.get());
  ASSERT_NE(moh, nullptr);
  auto x = torch::randn({2, 8, 24});
  module->eval();
  EXPECT_EQ(module->forward(x, context(8)).aux_losses.count("moh_balance"), 0u);
  module->train();
  auto out = module->forward(x, context(8));
  ASSERT_EQ(out.aux_losses.count("moh_balance"), 1u);
  // Recompute from the router by the paper's form L_b = Σ_i P_i f_i, times E (code: E²·mean).
  torch::NoGradGuard no_grad;
  auto probs = torch::softmax(moh->wg(x.reshape({-1, 24})), -1);  // [BT, E=4]
  auto top = std::get<1>(probs.topk(2, -1));
  auto chosen = torch::zeros_like(probs).scatter(-1, top, 1.0);
  const double expected = 4.0 * (probs.mean(0) * chosen.mean(0)).sum().item<double>() * 0.01;
  EXPECT_NEAR(out.aux_losses["moh_balance"].item<double>(), expected, 1e-7);
  // Head utilisation: shared heads 1, routed fractions sum to K.
  auto util = out.stats.at("head_util");
  EXPECT_TRUE(torch::allclose(util.narrow(0, 0, 2), torch::ones({2})));
  EXPECT_NEAR(util.narrow(0, 2, 4).sum().item<double>(), 2.0, 1e-6);
  EXPECT_FALSE(util.requires_grad());
}

TEST(Moh, DegenerateSplits) {
  // K = 0: no routers for routed heads and no balance loss; only wg_1 exists.
  auto k0 = make("moh", 16, 4, moh_params(4, 0));
  auto names = k0->named_parameters().keys();
  EXPECT_EQ(std::count(names.begin(), names.end(), "wg_1.weight"), 1);
  EXPECT_EQ(std::count(names.begin(), names.end(), "wg.weight"), 0);
  k0->train();
  auto x = torch::randn({2, 5, 16});
  EXPECT_TRUE(k0->forward(x, context(5)).aux_losses.empty());
  // K = 0 with routed heads left over: they never contribute (zero utilisation).
  auto k0_partial = make("moh", 16, 4, moh_params(2, 0));
  auto util = k0_partial->forward(x, context(5)).stats.at("head_util");
  EXPECT_TRUE(torch::equal(util, torch::tensor({1.0f, 1.0f, 0.0f, 0.0f})));
  // No shared heads: only wg (no wg_0 / wg_1).
  auto hs0 = make("moh", 16, 4, moh_params(0, 2));
  auto names0 = hs0->named_parameters().keys();
  EXPECT_EQ(std::count(names0.begin(), names0.end(), "wg_0.weight"), 0);
  EXPECT_EQ(std::count(names0.begin(), names0.end(), "wg.weight"), 1);
  // Invalid: nothing active, K too large, unknown router.
  EXPECT_THROW(make("moh", 16, 4, moh_params(0, 0)), UserError);
  EXPECT_THROW(make("moh", 16, 4, moh_params(2, 3)), UserError);
  EXPECT_THROW(make("moh", 16, 4, moh_params(2, 1, "magic")), UserError);
}

TEST(Moh, PerLayerLists) {
  YAML::Node p;
  p["shared_heads"] = std::vector<int64_t>{1, 3};
  p["routed_k"] = std::vector<int64_t>{2, 0};
  auto layer1 = make("moh", 16, 4, p, 0, /*layer=*/1);
  auto* moh = dynamic_cast<MohAttentionImpl*>(layer1.get());
  EXPECT_EQ(moh->options().shared_heads, 3);
  EXPECT_EQ(moh->options().routed_k, 0);
  EXPECT_THROW(make("moh", 16, 4, p, 0, /*layer=*/2), UserError);
}

TEST(Moh, KvCacheDecodingEqualsFullForward) {
  torch::manual_seed(6);
  auto module = make("moh", 16, 4, moh_params(1, 2));
  module->eval();
  auto x = torch::randn({2, 7, 16});
  auto full = module->forward(x, context(7)).y;
  KVCache cache;
  std::vector<torch::Tensor> steps;
  for (int64_t t = 0; t < 7; ++t) {
    auto ctx = context(1, "causal", 0, t);
    ctx.cache = &cache;
    steps.push_back(module->forward(x.narrow(1, t, 1), ctx).y);
  }
  EXPECT_TRUE(torch::allclose(torch::cat(steps, 1), full, 1e-5, 1e-6));
}

TEST(Moh, ConvertedMhaComputesTheSameFunctionWithAllHeadsActive) {
  torch::manual_seed(7);
  AttentionOptions options;
  options.d_model = 16;
  options.n_heads = 4;
  YAML::Node mha_params;
  mha_params["rope"] = true;
  options.module_options = bind_attention_options("mha", mha_params);
  auto mha = make_attention("mha", options);
  // h_s = 1 + K = 3 routed of 3: every head active; zero routers -> every gate is exactly 1.
  auto moh = make("moh", 16, 4, moh_params(1, 3));
  std::map<std::string, torch::Tensor> source, target;
  for (const auto& p : mha->named_parameters()) source["blocks.0.attn." + p.key()] = p.value();
  for (const auto& p : moh->named_parameters()) target["blocks.0.attn." + p.key()] = p.value();
  auto converted = convert_mha_to_moh(source, target, /*zero_routers=*/true);
  EXPECT_EQ(converted.size(), target.size());
  {
    torch::NoGradGuard no_grad;
    for (auto& p : moh->named_parameters())
      p.value().copy_(converted.at("blocks.0.attn." + p.key()));
  }
  EXPECT_TRUE(torch::equal(moh->named_parameters()["proj.bias"], torch::zeros({16})));
  auto x = torch::randn({2, 6, 16});
  mha->eval();
  moh->eval();
  auto y_mha = mha->forward(x, context(6)).y;
  auto y_moh = moh->forward(x, context(6)).y;
  EXPECT_TRUE(torch::allclose(y_mha, y_moh, 1e-5, 1e-6)) << (y_mha - y_moh).abs().max();
  // Default (non-zero) routers: qkv/proj are still exact copies, routers keep the target init.
  auto kept = convert_mha_to_moh(source, target, false);
  EXPECT_TRUE(
      torch::equal(kept.at("blocks.0.attn.wg.weight"), target.at("blocks.0.attn.wg.weight")));
  EXPECT_TRUE(torch::equal(kept.at("blocks.0.attn.qkv.weight").narrow(0, 16, 16),
                           source.at("blocks.0.attn.k_proj.weight")));
  // A GQA source (an imported Llama): without the head size the KV heads cannot be expanded;
  // with it each KV head is repeated for its query heads and the function is unchanged.
  options.n_kv_heads = 2;
  auto gqa = make_attention("mha", options);
  std::map<std::string, torch::Tensor> gqa_state;
  for (const auto& p : gqa->named_parameters()) gqa_state["blocks.0.attn." + p.key()] = p.value();
  EXPECT_THROW(convert_mha_to_moh(gqa_state, target), UserError);
  auto expanded = convert_mha_to_moh(gqa_state, target, /*zero_routers=*/true, /*head_dim=*/4);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : moh->named_parameters())
      p.value().copy_(expanded.at("blocks.0.attn." + p.key()));
  }
  gqa->eval();
  auto y_gqa = gqa->forward(x, context(6)).y;
  EXPECT_TRUE(torch::allclose(y_gqa, moh->forward(x, context(6)).y, 1e-5, 1e-6));
}
