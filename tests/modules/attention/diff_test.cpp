// DIFF and GDA (docs/methods.md §2): gradients, causality, λ_init schedule, head-count mapping,
// GDA with G = 1 equal to DIFF, KV-cache decoding and the GDA growth recipe.
#include "modules/attention/diff.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "modules/attention/gda.h"
#include "modules/attention/gda_grow.h"
#include "tests/modules/attention/attention_test_util.h"

using namespace attnlab;
using namespace attnlab::attention_test;

namespace {

YAML::Node gda_params(int64_t signal, int64_t noise, int64_t kv = 0) {
  YAML::Node p;
  p["n_signal"] = signal;
  p["n_noise"] = noise;
  if (kv > 0) p["n_kv_pairs"] = kv;
  return p;
}

std::map<std::string, torch::Tensor> state_of(AttentionImpl& module, const std::string& prefix) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : module.named_parameters()) out[prefix + p.key()] = p.value().detach();
  return out;
}

void load_into(AttentionImpl& module, const std::map<std::string, torch::Tensor>& state,
               const std::string& prefix) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.named_parameters()) p.value().copy_(state.at(prefix + p.key()));
}

}  // namespace

TEST(Diff, GradientsMatchFiniteDifferences) {
  torch::manual_seed(11);
  auto diff = make("diff", 16, 4, YAML::Node(), /*kv_heads=*/2, /*layer=*/2);  // GQA: 1 kv pair
  EXPECT_LT(gradient_check_error(*diff, torch::randn({2, 5, 16}), context(5)), 1e-7);
  auto gda = make("gda", 16, 4, gda_params(4, 2, 1));
  EXPECT_LT(gradient_check_error(*gda, torch::randn({2, 5, 16}), context(5, "block_causal", 2)),
            1e-7);
}

TEST(Diff, HeadMappingMatchesMhaParameterShapes) {
  auto diff = make("diff", 32, 8, YAML::Node(), 4);
  auto params = diff->named_parameters();
  EXPECT_EQ(params["q_proj.weight"].sizes(), torch::IntArrayRef({32, 32}));
  EXPECT_EQ(params["k_proj.weight"].sizes(), torch::IntArrayRef({16, 32}));  // 2 pairs x 2 x d=4
  EXPECT_EQ(params["v_proj.weight"].sizes(), torch::IntArrayRef({16, 32}));
  EXPECT_EQ(params["out_proj.weight"].sizes(), torch::IntArrayRef({32, 32}));
  EXPECT_EQ(params["lambda_q1"].sizes(), torch::IntArrayRef({4}));
  EXPECT_EQ(params["subln.weight"].sizes(), torch::IntArrayRef({8}));
  EXPECT_THROW(make("diff", 32, 3, YAML::Node()), UserError);  // odd head count
}

TEST(Diff, LambdaInitSchedule) {
  // unilm: 0.8 - 0.6 exp(-0.3 depth): 0.2, 0.3555, 0.4707, 0.5561 (docs/methods.md §2).
  const double expected[] = {0.2, 0.3555, 0.4707, 0.5561};
  for (int64_t layer = 0; layer < 4; ++layer) {
    auto module = make("diff", 16, 4, YAML::Node(), 0, layer);
    EXPECT_NEAR(dynamic_cast<DiffAttentionImpl&>(*module).options().lambda_init, expected[layer],
                1e-4);
  }
  // Motif (GDA default): first layer -0.0099.
  auto gda = make("gda", 16, 4, gda_params(3, 1), 0, 0);
  EXPECT_NEAR(dynamic_cast<DiffAttentionImpl&>(*gda).options().lambda_init, -0.0099, 1e-4);
}

TEST(Diff, CausalOutputIgnoresFutureTokens) {
  torch::manual_seed(12);
  for (const char* name : {"diff", "gda"}) {
    auto module = make(name, 16, 4, YAML::Node());
    if (std::string(name) == "gda") module = make(name, 16, 4, gda_params(3, 1));
    auto x = torch::randn({2, 8, 16});
    auto y = module->forward(x, context(8)).y;
    auto x2 = x.clone();
    x2.narrow(1, 5, 3).normal_();
    auto y2 = module->forward(x2, context(8)).y;
    EXPECT_TRUE(torch::allclose(y.narrow(1, 0, 5), y2.narrow(1, 0, 5), 1e-6, 1e-6)) << name;
    EXPECT_FALSE(torch::allclose(y.narrow(1, 5, 3), y2.narrow(1, 5, 3), 1e-3, 1e-3)) << name;
  }
}

TEST(Diff, GdaWithGroupOneEqualsDiff) {
  torch::manual_seed(13);
  auto diff = make("diff", 24, 6, YAML::Node(), /*kv_heads=*/6, /*layer=*/3);
  YAML::Node p = gda_params(3, 3);
  p["lambda_init_offset"] = 0;
  p["rope_style"] = "interleaved";
  auto gda = make("gda", 24, 6, p, 0, 3);
  load_into(*gda, state_of(*diff, ""), "");
  auto x = torch::randn({2, 9, 24});
  auto ctx = context(9);
  ctx.need_probs = true;
  auto a = diff->forward(x, ctx), b = gda->forward(x, ctx);
  EXPECT_TRUE(torch::equal(a.y, b.y));
  EXPECT_TRUE(torch::equal(a.probs, b.probs));
}

TEST(Diff, KvCacheDecodingEqualsFullForward) {
  torch::manual_seed(14);
  for (const char* name : {"diff", "gda"}) {
    auto module = std::string(name) == "gda" ? make(name, 16, 4, gda_params(4, 2, 1))
                                             : make(name, 16, 4, YAML::Node(), 2);
    auto x = torch::randn({2, 6, 16});
    auto full = module->forward(x, context(6)).y;
    KVCache cache;
    std::vector<torch::Tensor> steps;
    // Two tokens, then one at a time.
    auto first = context(2);
    first.cache = &cache;
    steps.push_back(module->forward(x.narrow(1, 0, 2), first).y);
    for (int64_t t = 2; t < 6; ++t) {
      auto ctx = context(1, "causal", 0, t);
      ctx.cache = &cache;
      steps.push_back(module->forward(x.narrow(1, t, 1), ctx).y);
    }
    EXPECT_TRUE(torch::allclose(torch::cat(steps, 1), full, 1e-5, 1e-6)) << name;
  }
}

TEST(GdaGrow, GrownModelComputesTheSameFunction) {
  torch::manual_seed(15);
  // 2 groups of G = 2 signal heads, 1 kv pair -> G' = 3 (uneven copy counts) and G' = 4.
  auto small = make("gda", 24, 6, gda_params(4, 2, 1), 0, 1);
  auto x = torch::randn({2, 7, 24});
  auto y = small->forward(x, context(7)).y;
  for (int64_t target : {6, 8}) {
    auto state = state_of(*small, "blocks.1.attn.");
    state["embed.weight"] = torch::randn({5, 24});  // non-attention keys pass through
    GdaGrowReport report;
    auto grown = grow_gda_state(state, {target, 0.0}, &report);
    EXPECT_EQ(report.layers, 1);
    EXPECT_EQ(report.old_signal, 4);
    EXPECT_EQ(report.n_noise, 2);
    EXPECT_TRUE(torch::equal(grown.at("embed.weight"), state.at("embed.weight")));
    auto big = make("gda", 24, 6, gda_params(target, 2, 1), 0, 1);
    load_into(*big, grown, "blocks.1.attn.");
    auto y_big = big->forward(x, context(7)).y;
    EXPECT_TRUE(torch::allclose(y, y_big, 1e-5, 1e-6)) << target << ": " << (y - y_big).abs().max();
  }
  // With jitter the function moves (symmetry broken), without it nothing is random.
  auto jittered = grow_gda_state(state_of(*small, ""), {8, 0.1});
  auto big = make("gda", 24, 6, gda_params(8, 2, 1), 0, 1);
  load_into(*big, jittered, "");
  EXPECT_FALSE(torch::allclose(y, big->forward(x, context(7)).y, 1e-4, 1e-4));
  // Invalid targets: fewer heads, not a multiple of n_noise; no differential layer at all.
  EXPECT_THROW(grow_gda_state(state_of(*small, ""), {2, 0.0}), UserError);
  EXPECT_THROW(grow_gda_state(state_of(*small, ""), {7, 0.0}), UserError);
  EXPECT_THROW(grow_gda_state({{"embed.weight", torch::zeros({2, 2})}}, {8, 0.0}), UserError);
}

TEST(GdaGrow, DiffCheckpointGrowsIntoGda) {
  torch::manual_seed(16);
  auto diff = make("diff", 16, 4, YAML::Node());  // 2 signal, 2 noise, 2 kv pairs
  auto grown = grow_gda_state(state_of(*diff, ""), {4, 0.0});
  YAML::Node p = gda_params(4, 2, 2);
  p["lambda_init_offset"] = 0;
  p["rope_style"] = "interleaved";
  auto gda = make("gda", 16, 4, p);
  load_into(*gda, grown, "");
  auto x = torch::randn({1, 5, 16});
  EXPECT_TRUE(
      torch::allclose(diff->forward(x, context(5)).y, gda->forward(x, context(5)).y, 1e-5, 1e-6));
}
