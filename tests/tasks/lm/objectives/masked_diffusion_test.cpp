// Masked-diffusion objective: pure masking/loss functions (without a model) and the objective on a
// tiny GPT (block-causal and clean-context layouts, probe outputs, gradients).
#include "tasks/lm/objectives/masked_diffusion.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "losses/loss_set.h"

using namespace attnlab;

namespace {

constexpr int64_t kVocab = 13, kMask = 12;

YAML::Node objective_config(const std::string& extra = "") {
  return YAML::Load("objective: {name: masked_diffusion" + extra +
                    "}\nloss: {terms: [{name: cross_entropy, weight: 1.0}]}\n");
}

Gpt tiny_gpt(MaskKind kind = MaskKind::kBlockCausal, int64_t block = 4) {
  GptOptions o;
  o.vocab_size = kVocab;
  o.d_model = 16;
  o.n_layers = 2;
  o.n_heads = 2;
  o.max_seq_len = 64;
  o.mask.kind = kind;
  o.mask.block_size = block;
  return Gpt(o);
}

ObjectiveContext context_with_seed(uint64_t seed) {
  ObjectiveContext c;
  c.mask_token = kMask;
  c.bos_token = 0;
  c.generator = at::detail::createCPUGenerator(seed);
  return c;
}

}  // namespace

TEST(MaskedDiffusionLoss, AllMaskedAtTOneEqualsMeanCrossEntropy) {
  torch::manual_seed(0);
  auto logits = torch::randn({3, 7, kVocab}, torch::kDouble);
  auto x0 = torch::randint(0, kMask, {3, 7});  // targets are never [MASK]
  auto masked = torch::ones({3, 7}, torch::kBool);
  auto weight = torch::ones({3, 7}, torch::kDouble);  // 1/t with t = 1
  auto loss = masked_diffusion_loss(logits, x0, masked, weight, kMask, 21.0);
  // Independent reference: SUBS = softmax over the vocabulary without the [MASK] column.
  auto without_mask = logits.narrow(-1, 0, kMask).reshape({-1, kMask});
  auto expected = torch::nn::functional::cross_entropy(without_mask, x0.view({-1}));
  EXPECT_NEAR(loss.item<double>(), expected.item<double>(), 1e-12);
}

TEST(MaskedDiffusionLoss, WeightsByInverseTAndDividesByAllTokens) {
  torch::manual_seed(1);
  auto logits = torch::randn({2, 5, kVocab}, torch::kDouble);
  auto x0 = torch::randint(0, kMask, {2, 5});
  auto masked = torch::rand({2, 5}) < 0.5;
  masked[0][1] = true;
  auto t = torch::rand({2, 1}, torch::kDouble).expand({2, 5}) * 0.9 + 0.1;
  auto loss = masked_diffusion_loss(logits, x0, masked, 1.0 / t, kMask, 10.0);
  double expected = 0.0;
  auto log_probs = torch::log_softmax(logits.narrow(-1, 0, kMask), -1);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 5; ++i)
      if (masked[b][i].item<bool>())
        expected -=
            log_probs[b][i][x0[b][i].item<int64_t>()].item<double>() / t[b][i].item<double>();
  EXPECT_NEAR(loss.item<double>(), expected / 10.0, 1e-12);
}

TEST(MaskedDiffusionTimes, AntitheticIsStratifiedAndInRange) {
  MaskedDiffusionOptions o;
  o.t_min = 0.2;
  o.t_max = 0.8;
  auto g = at::detail::createCPUGenerator(3);
  auto t = sample_diffusion_times(4, 5, o, g);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{4, 5}));
  auto u = ((t - 0.2) / 0.6).view({-1});
  for (int64_t j = 0; j < 20; ++j) {  // draw j lies in its own stratum [j/20, (j+1)/20)
    EXPECT_GE(u[j].item<double>(), j / 20.0 - 1e-12);
    EXPECT_LT(u[j].item<double>(), (j + 1) / 20.0 + 1e-12);
  }
}

TEST(MaskedDiffusionMasking, UniformNeverMasksBosAndHitsRateT) {
  MaskedDiffusionOptions o;
  auto g = at::detail::createCPUGenerator(4);
  auto t = torch::full({4, 5000}, 0.3, torch::kDouble);
  auto maskable = torch::ones({4, 5000}, torch::kBool);
  maskable.select(1, 0).fill_(false);
  auto d = sample_masking(t, maskable, 16, o, g);
  EXPECT_FALSE(d.masked.select(1, 0).any().item<bool>());
  const double rate = d.masked.narrow(1, 1, 4999).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(rate, 0.3, 4 * std::sqrt(0.3 * 0.7 / 19996.0));
}

TEST(MaskedDiffusionMasking, PositionDependentReadings) {
  const int64_t block = 16, blocks = 2000;
  auto maskable = torch::ones({1, block * blocks}, torch::kBool);
  for (auto mode : {PositionMasking::kClip, PositionMasking::kCount}) {
    MaskedDiffusionOptions o;
    o.position_masking = mode;
    auto g = at::detail::createCPUGenerator(5);
    // Small t: masking concentrates at the end of each block; t = 1: everything is masked.
    auto t = torch::full({1, block * blocks}, 0.2, torch::kDouble);
    auto d = sample_masking(t, maskable, block, o, g);
    auto per_pos = d.masked.view({blocks, block}).to(torch::kDouble).mean(0);
    EXPECT_GT(per_pos[block - 1].item<double>(), 2 * per_pos[0].item<double>());
    const double mean = per_pos.mean().item<double>();
    if (mode == PositionMasking::kCount)  // keeps uniform masking's count law: mean rate t
      EXPECT_NEAR(mean, 0.2, 0.01);
    else  // clip reading: mean p <= t
      EXPECT_LE(mean, 0.2 + 0.01);
    if (mode == PositionMasking::kClip) {
      auto p_block = d.p.view({blocks, block})[0];
      EXPECT_NEAR(p_block.mean().item<double>(), 0.2, 1e-12);  // no clipping at t = 0.2 here
      EXPECT_NEAR(p_block[block - 1].item<double>() / p_block[0].item<double>(),
                  std::exp(std::log(2.0) / (0.1 * block) * 0.8 * (block - 1)), 1e-9);
    }
    auto all = sample_masking(torch::ones({1, block * 4}, torch::kDouble),
                              torch::ones({1, block * 4}, torch::kBool), block, o, g);
    EXPECT_TRUE(all.masked.all().item<bool>());
  }
}

TEST(MaskedDiffusionOptionsTest, RejectsBadValues) {
  EXPECT_THROW(masked_diffusion_options(objective_config(", t_per: token")), UserError);
  EXPECT_THROW(masked_diffusion_options(objective_config(", position_masking: x")), UserError);
  EXPECT_THROW(masked_diffusion_options(objective_config(", t_min: 0")), UserError);
  EXPECT_THROW(
      masked_diffusion_options(objective_config(", position_masking: count, loss_weight: inv_p")),
      UserError);
  EXPECT_NO_THROW(masked_diffusion_options(objective_config(", t_per: block, antithetic: false")));
}

TEST(MaskedDiffusionObjectiveTest, TinyGptBlockCausalAndCleanContext) {
  for (bool clean : {false, true}) {
    torch::manual_seed(6);
    auto model = tiny_gpt();
    auto config =
        objective_config(std::string(", t_per: block") + (clean ? ", clean_context: true" : ""));
    LossSet losses(config, 2);
    const auto made = make_objective(config);
    ObjectiveImpl& objective = *made;
    auto context = context_with_seed(9);
    Batch batch;
    batch.input = torch::randint(0, kMask, {2, 12});
    batch.target = batch.input;  // ignored: no token shift
    auto result = objective.compute(*model, batch, losses, context, true);
    ASSERT_TRUE(std::isfinite(result.total.item<double>()));
    EXPECT_GT(result.total.item<double>(), 0.0);
    EXPECT_TRUE(result.terms.count("loss/masked_diffusion"));
    result.total.backward();
    EXPECT_TRUE(model->embed->weight.grad().defined());
    // The same draw reproduced by the step function: x_t is x0 with [MASK] where masked.
    auto replay = context_with_seed(9);
    auto step = masked_diffusion_step(*model, batch, masked_diffusion_options(config), replay, {});
    EXPECT_NEAR(step.loss.item<double>(), result.total.item<double>(), 1e-6);
    EXPECT_TRUE(torch::equal(
        step.x_t.masked_select(step.decision.masked),
        torch::full({step.decision.masked.sum().item<int64_t>()}, kMask, torch::kLong)));
    EXPECT_FALSE(step.decision.masked.select(1, 0).any().item<bool>());
    EXPECT_EQ(step.logits.sizes(), (std::vector<int64_t>{2, 12, kVocab}));
  }
}

TEST(MaskedDiffusionObjectiveTest, CleanContextLogitsMatchBd3lmLayout) {
  // With clean context, the noisy half's logits must not depend on x_0 of the same or later
  // blocks: changing the clean tokens of the last block leaves all noisy logits unchanged, while
  // changing those of block 0 changes the noisy logits of later blocks.
  torch::manual_seed(8);
  auto model = tiny_gpt();
  auto x_t = torch::randint(0, kVocab, {1, 8});
  auto x0 = torch::randint(0, kMask, {1, 8});
  auto half = torch::arange(8);
  ForwardOptions f;
  MaskSpec spec = model->options().mask;
  spec.clean_context = true;
  f.mask = spec;
  f.positions = torch::cat({half, half});
  auto logits = [&](const torch::Tensor& clean) {
    return model->forward(torch::cat({x_t, clean}, 1), f).logits.narrow(1, 0, 8);
  };
  auto base = logits(x0);
  auto late = x0.clone();
  late[0][6] = (late[0][6].item<int64_t>() + 1) % kMask;
  EXPECT_TRUE(torch::allclose(logits(late), base, 0, 0));
  auto early = x0.clone();
  early[0][1] = (early[0][1].item<int64_t>() + 1) % kMask;
  auto changed = logits(early);
  EXPECT_TRUE(torch::equal(changed.narrow(1, 0, 4), base.narrow(1, 0, 4)));
  EXPECT_FALSE(torch::allclose(changed.narrow(1, 4, 4), base.narrow(1, 4, 4)));
}

TEST(MaskedDiffusionProbe, ReturnsLogitsTargetsDecisionsAndLogitGradients) {
  torch::manual_seed(10);
  auto model = tiny_gpt();
  auto context = context_with_seed(2);
  Batch batch;
  batch.input = torch::randint(0, kMask, {2, 8});
  auto probe = masked_diffusion_probe(*model, batch, objective_config(), context);
  for (const char* key : {"logits", "targets", "input", "masked", "t", "p", "loss", "logit_grad"})
    EXPECT_TRUE(probe.count(key)) << key;
  EXPECT_EQ(probe["logit_grad"].sizes(), probe["logits"].sizes());
  // Unmasked positions contribute no loss, so their logit gradient is zero.
  auto unmasked = probe["masked"].logical_not().unsqueeze(-1).expand_as(probe["logit_grad"]);
  EXPECT_EQ(probe["logit_grad"].masked_select(unmasked).abs().sum().item<double>(), 0.0);
}

TEST(MaskedDiffusionObjectiveTest, RequiresMaskToken) {
  auto model = tiny_gpt();
  auto config = objective_config();
  LossSet losses(config, 2);
  const auto made = make_objective(config);
  ObjectiveImpl& objective = *made;
  ObjectiveContext context;  // mask_token = -1
  Batch batch;
  batch.input = torch::randint(0, kMask, {1, 8});
  EXPECT_THROW(objective.compute(*model, batch, losses, context, true), UserError);
}
