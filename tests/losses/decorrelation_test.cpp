// Decorrelation (sink) loss against the definition: 0 for hidden states orthogonal to BOS, a
// brute-force double loop (prefix and mask included), default layers, factor and diagnostics.
#include "losses/decorrelation.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "losses/loss_set.h"

using namespace attnlab;

namespace {
// Plain loops over b and s with scalar cosines.
double brute_force(const torch::Tensor& h, int64_t P, const torch::Tensor& mask) {
  double sum = 0, count = 0;
  for (int64_t b = 0; b < h.size(0); ++b) {
    auto bos = h[b][0];
    for (int64_t s = 1; s <= P; ++s) {
      if (mask.defined() && !mask[b][s].item<bool>()) continue;
      double cos = (bos * h[b][s]).sum().item<double>() /
                   (bos.norm().item<double>() * h[b][s].norm().item<double>());
      sum += cos * cos;
      count += 1;
    }
  }
  return sum / count;
}
}  // namespace

TEST(Decorrelation, ZeroForStatesOrthogonalToBos) {
  // BOS along e0, every other token in span(e1..e3) with random coefficients.
  auto h = torch::zeros({2, 5, 4}, torch::kDouble);
  h.index_put_({torch::indexing::Slice(), 0, 0}, 3.0);
  h.index_put_(
      {torch::indexing::Slice(), torch::indexing::Slice(1, 5), torch::indexing::Slice(1, 4)},
      torch::randn({2, 4, 3}, torch::kDouble));
  EXPECT_NEAR(bos_decorrelation(h, -1).item<double>(), 0.0, 1e-15);
  // And 1 when every token is parallel (or anti-parallel) to BOS.
  auto parallel = h.narrow(1, 0, 1).expand({2, 5, 4}) *
                  torch::tensor({1.0, -2.0, 0.5, 3.0, 1.0}, torch::kDouble).view({1, 5, 1});
  EXPECT_NEAR(bos_decorrelation(parallel, -1).item<double>(), 1.0, 1e-12);
}

TEST(Decorrelation, MatchesBruteForceLoop) {
  torch::manual_seed(4);
  auto h = torch::randn({3, 7, 5}, torch::kDouble);
  EXPECT_NEAR(bos_decorrelation(h, -1).item<double>(), brute_force(h, 6, {}), 1e-12);
  EXPECT_NEAR(bos_decorrelation(h, 3).item<double>(), brute_force(h, 3, {}), 1e-12);
  auto mask = torch::rand({3, 7}) > 0.3;
  mask[0][1] = true;
  EXPECT_NEAR(bos_decorrelation(h, 4, mask).item<double>(), brute_force(h, 4, mask), 1e-12);
}

TEST(Decorrelation, TermDefaultsFactorAndDiagnostics) {
  torch::manual_seed(6);
  LossSet set(YAML::Load("loss: {terms: [{name: decorrelation, factor: 3.0, prefix_length: 4}]}"),
              4);
  TapRequest taps = set.taps();
  EXPECT_FALSE(taps.logits);
  EXPECT_EQ(taps.hidden_layers, (std::set<int64_t>{0, 1, 2}));  // every block but the last
  EXPECT_TRUE(taps.prob_layers.empty());
  ModelOutput out;
  Batch batch;
  for (int64_t l = 0; l < 3; ++l) out.hidden[l] = torch::randn({2, 6, 8}, torch::kDouble);
  out.hidden[1][0][3][2] = -50.0;  // a massive activation
  double expect = 0;
  for (int64_t l = 0; l < 3; ++l) expect += brute_force(out.hidden[l], 4, {});
  auto result = set.compute(out, batch);
  EXPECT_NEAR(result.total.item<double>(), 3.0 * expect / 3.0, 1e-12);
  EXPECT_NEAR(result.terms.at("stat/max_act/layer1").item<double>(), 50.0, 1e-12);
  auto cos = bos_cosines(out.hidden[2], 4);
  EXPECT_NEAR(result.terms.at("stat/bos_cos/layer2").item<double>(), cos.mean().item<double>(),
              1e-12);
  EXPECT_FALSE(result.terms.at("stat/bos_cos/layer0").requires_grad());
  // A prefix longer than the batch's sequence is a user error naming the key.
  out.hidden[0] = torch::randn({2, 3, 8}, torch::kDouble);
  EXPECT_THROW(set.compute(out, batch), UserError);
}

TEST(Decorrelation, ExplicitLayersAndMaskSource) {
  LossSet set(
      YAML::Load("loss: {terms: [{name: decorrelation, layers: [-1], token_mask: loss_mask}]}"), 3);
  EXPECT_EQ(set.taps().hidden_layers, (std::set<int64_t>{2}));
  ModelOutput out;
  Batch batch;
  out.hidden[2] = torch::randn({2, 5, 4}, torch::kDouble);
  EXPECT_THROW(set.compute(out, batch), UserError);  // no loss_mask in the batch
  batch.loss_mask = torch::tensor({{1, 1, 1, 0, 0}, {1, 0, 1, 1, 1}}, torch::kBool);
  EXPECT_NEAR(set.compute(out, batch).total.item<double>(),
              brute_force(out.hidden[2], 4, batch.loss_mask), 1e-12);
  EXPECT_THROW(LossSet(YAML::Load("loss: {terms: [{name: decorrelation, layers: [5]}]}"), 3),
               UserError);
}
