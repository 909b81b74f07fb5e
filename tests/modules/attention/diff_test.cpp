// DIFF and GDA (docs/methods.md §2): gradients, causality, λ_init schedule, head-count mapping,
// GDA with G = 1 equal to DIFF, KV-cache decoding, model.attention_backend (native, sdpa and auto
// agree) and the GDA growth recipe.
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

// model.attention_backend on DIFF and GDA: `native` and `auto` run the composed difference map,
// `sdpa` two softmax attentions through the device kernels (A1·V − λ·A2·V). In float64 they agree
// to rounding, values and gradients (x and every parameter), on every mask layout the trainer
// produces and with a KV cache; probes and attention dropout keep the composed map under `sdpa`.
namespace {

struct BackendCase {
  std::string name;
  std::string mask = "causal";
  int64_t block = 0;
  bool padding = false;  // batch 1's first keys are padding (causal: its first rows see no key)
  bool clean_context = false;
};

struct BackendRun {
  torch::Tensor y;
  std::vector<torch::Tensor> grads;  // x, then every parameter
};

BackendRun run_backend(AttentionImpl& module, const torch::Tensor& x_in,
                       const AttentionContext& ctx, const torch::Tensor& weights) {
  auto x = x_in.clone().requires_grad_(true);
  auto y = module.forward(x, ctx).y;
  std::vector<torch::Tensor> inputs = {x};
  for (const auto& p : module.parameters()) inputs.push_back(p);
  BackendRun run;
  run.y = y.detach();
  run.grads = torch::autograd::grad({(y * weights).sum()}, inputs, {}, /*retain_graph=*/false,
                                    /*create_graph=*/false, /*allow_unused=*/true);
  return run;
}

double max_difference(const BackendRun& a, const BackendRun& b) {
  double worst = (a.y - b.y).abs().max().item<double>();
  for (size_t i = 0; i < a.grads.size(); ++i) {
    if (!a.grads[i].defined() && !b.grads[i].defined()) continue;
    worst = std::max(worst, (a.grads[i] - b.grads[i]).abs().max().item<double>());
  }
  return worst;
}

}  // namespace

TEST(Diff, AttentionBackendsAgree) {
  const std::vector<BackendCase> cases = {
      {"causal"},
      {"block causal", "block_causal", 3},
      {"bidirectional with padding", "bidirectional", 0, true},
      {"causal with padding (rows without keys)", "causal", 0, true},
      {"clean context (BD3-LM)", "block_causal", 2, false, true},
  };
  const std::vector<AttentionBackend> backends = {AttentionBackend::kNative,
                                                  AttentionBackend::kSdpa, AttentionBackend::kAuto};
  const int64_t batch = 2, length = 8, d_model = 24;
  for (const char* name : {"diff", "gda"}) {
    const bool gda = std::string(name) == "gda";
    // DIFF with grouped KV (6 heads, 2 KV heads: 3 differential heads share one kv pair); GDA
    // with G = 2 signal heads per noise head and one kv pair.
    const YAML::Node params = gda ? gda_params(4, 2, 1) : YAML::Node();
    for (const auto& c : cases) {
      SCOPED_TRACE(std::string(name) + ", " + c.name);
      torch::manual_seed(21);
      std::vector<std::shared_ptr<AttentionImpl>> modules;
      for (auto backend : backends) {
        modules.push_back(make(name, d_model, 6, params, gda ? 0 : 2, 1, backend));
        modules.back()->to(torch::kDouble);
      }
      for (size_t i = 1; i < modules.size(); ++i)
        load_into(*modules[i], state_of(*modules[0], ""), "");
      auto ctx = context(length, c.mask, c.block);
      if (c.clean_context) {
        auto half = torch::arange(length / 2);
        ctx.positions = torch::cat({half, half});
        ctx.mask.clean_context = true;
      }
      ctx.positions_in_order = !c.clean_context;
      if (c.padding) {
        auto padding = torch::ones({batch, length}, torch::kBool);
        padding.index_put_({1, torch::indexing::Slice(0, 3)}, false);
        ctx.mask.key_padding = padding;
      }
      auto x = torch::randn({batch, length, d_model}, torch::kDouble);
      auto weights = torch::randn({batch, length, d_model}, torch::kDouble);
      std::vector<BackendRun> runs;
      for (auto& module : modules) runs.push_back(run_backend(*module, x, ctx, weights));
      EXPECT_TRUE(torch::isfinite(runs[1].y).all().item<bool>());
      EXPECT_LT(max_difference(runs[0], runs[1]), 1e-12) << "native vs sdpa";
      EXPECT_LT(max_difference(runs[0], runs[2]), 1e-12) << "native vs auto";
    }
  }
}

TEST(Diff, AttentionBackendsAgreeWithKvCache) {
  for (const char* name : {"diff", "gda"}) {
    const bool gda = std::string(name) == "gda";
    const YAML::Node params = gda ? gda_params(4, 2, 1) : YAML::Node();
    torch::manual_seed(22);
    auto native = make(name, 16, 4, params, gda ? 0 : 2, 0, AttentionBackend::kNative);
    auto sdpa = make(name, 16, 4, params, gda ? 0 : 2, 0, AttentionBackend::kSdpa);
    native->to(torch::kDouble);
    sdpa->to(torch::kDouble);
    load_into(*sdpa, state_of(*native, ""), "");
    auto x = torch::randn({2, 7, 16}, torch::kDouble);
    std::vector<torch::Tensor> outputs[2];
    int which = 0;
    for (auto* module : {native.get(), sdpa.get()}) {
      KVCache cache;
      auto first = context(4);
      first.cache = &cache;
      outputs[which].push_back(module->forward(x.narrow(1, 0, 4), first).y);
      for (int64_t t = 4; t < 7; ++t) {
        auto step = context(1, "causal", 0, t);
        step.cache = &cache;
        outputs[which].push_back(module->forward(x.narrow(1, t, 1), step).y);
      }
      ++which;
    }
    auto a = torch::cat(outputs[0], 1), b = torch::cat(outputs[1], 1);
    EXPECT_LT((a - b).abs().max().item<double>(), 1e-12) << name;
  }
}

TEST(Diff, SdpaKeepsTheDifferenceMapForProbesAndDropout) {
  torch::manual_seed(23);
  YAML::Node params;
  auto native = make("diff", 16, 4, params, 0, 0, AttentionBackend::kNative);
  auto sdpa = make("diff", 16, 4, params, 0, 0, AttentionBackend::kSdpa);
  load_into(*sdpa, state_of(*native, ""), "");
  auto x = torch::randn({2, 6, 16});
  auto probe = context(6);
  probe.need_probs = true;
  auto a = native->forward(x, probe), b = sdpa->forward(x, probe);
  ASSERT_TRUE(b.probs.defined());
  EXPECT_TRUE(torch::equal(a.probs, b.probs));
  EXPECT_TRUE(torch::equal(a.y, b.y));
  // Attention dropout in training: one mask on the difference map, the same draws as native.
  AttentionOptions options;
  options.d_model = 16;
  options.n_heads = 4;
  options.dropout = 0.3;
  options.module_options = bind_attention_options("diff", params);
  options.backend = AttentionBackend::kNative;
  auto native_dropout = make_attention("diff", options);
  options.backend = AttentionBackend::kSdpa;
  auto sdpa_dropout = make_attention("diff", options);
  load_into(*sdpa_dropout, state_of(*native_dropout, ""), "");
  native_dropout->train();
  sdpa_dropout->train();
  torch::manual_seed(5);
  auto y_native = native_dropout->forward(x, context(6)).y;
  torch::manual_seed(5);
  auto y_sdpa = sdpa_dropout->forward(x, context(6)).y;
  EXPECT_TRUE(torch::equal(y_native, y_sdpa));
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
