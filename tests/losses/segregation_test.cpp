// A-STAR segregation/retention: the per-pair overlap's range and its two extremes, the heads and
// tokens groupings against explicit loops, retention's reference handling, and the prob taps.
#include "losses/segregation.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "losses/loss_set.h"

using namespace attnlab;
using torch::indexing::Slice;

namespace {
double overlap(const torch::Tensor& a, const torch::Tensor& b) {
  return torch::minimum(a, b).sum().item<double>() / (a + b).sum().item<double>();
}

torch::Tensor random_probs(int64_t B, int64_t H, int64_t T) {
  return torch::softmax(torch::randn({B, H, T, T}, torch::kDouble) * 2, -1);
}
}  // namespace

TEST(Segregation, PairOverlapRangeAndExtremes) {
  torch::manual_seed(7);
  auto maps = torch::rand({20, 4, 9}, torch::kDouble);
  auto per_pair = pairwise_overlap(maps);
  ASSERT_EQ(per_pair.sizes(), (std::vector<int64_t>{20, 6}));
  EXPECT_GE(per_pair.min().item<double>(), 0.0);
  EXPECT_LE(per_pair.max().item<double>(), 0.5);
  EXPECT_NEAR(per_pair[3][4].item<double>(), overlap(maps[3][1], maps[3][3]), 1e-12);  // pair (1,3)
  // Disjoint supports -> 0; identical maps -> 0.5; both empty -> 0 without NaN.
  auto disjoint = torch::zeros({1, 2, 6}, torch::kDouble);
  disjoint.index_put_({0, 0, Slice(0, 3)}, torch::rand({3}, torch::kDouble));
  disjoint.index_put_({0, 1, Slice(3, 6)}, torch::rand({3}, torch::kDouble));
  EXPECT_EQ(pairwise_overlap(disjoint).item<double>(), 0.0);
  auto same = torch::rand({1, 1, 6}, torch::kDouble).expand({1, 2, 6}).contiguous();
  EXPECT_NEAR(pairwise_overlap(same).item<double>(), 0.5, 1e-15);
  auto empty = torch::zeros({1, 2, 6}, torch::dtype(torch::kDouble).requires_grad(true));
  auto z = pairwise_overlap(empty);
  z.sum().backward();
  EXPECT_EQ(z.item<double>(), 0.0);
  EXPECT_TRUE(torch::isfinite(empty.grad()).all().item<bool>());
}

TEST(Segregation, HeadsGroupingMatchesLoops) {
  torch::manual_seed(8);
  LossSet set(YAML::Load("loss: {terms: [{name: segregation, layers: [1], heads: [0, 2, 3]}]}"), 3);
  EXPECT_EQ(set.taps().prob_layers, (std::set<int64_t>{1}));
  EXPECT_FALSE(set.taps().logits);
  EXPECT_TRUE(set.taps().hidden_layers.empty());
  ModelOutput out;
  Batch batch;
  out.probs[1] = random_probs(2, 4, 5);
  double expect = 0;
  const int64_t heads[] = {0, 2, 3};
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t q = 0; q < 5; ++q) {
      double row = 0;
      for (int i = 0; i < 3; ++i)
        for (int j = i + 1; j < 3; ++j)
          row += overlap(out.probs[1][b][heads[i]][q], out.probs[1][b][heads[j]][q]);
      expect += row / 3;
    }
  auto result = set.compute(out, batch);
  EXPECT_NEAR(result.total.item<double>(), expect / 10, 1e-12);
  EXPECT_LE(result.total.item<double>(), 0.5);
  // A head that does not exist is a user error naming the key.
  out.probs[1] = random_probs(2, 3, 5);
  EXPECT_THROW(set.compute(out, batch), UserError);
}

TEST(Segregation, TokensGroupingIsAStarOverConceptColumns) {
  torch::manual_seed(9);
  LossSet set(YAML::Load("loss: {terms: [{name: segregation, groups: tokens, "
                         "concept_positions: [0, 2, 3]}]}"),
              2);
  EXPECT_EQ(set.taps().prob_layers, (std::set<int64_t>{0, 1}));
  ModelOutput out;
  Batch batch;
  double expect = 0;
  for (int64_t l = 0; l < 2; ++l) {
    out.probs[l] = random_probs(2, 3, 6);
    for (int64_t b = 0; b < 2; ++b) {
      auto avg = out.probs[l][b].mean(0);  // [T_q, T_k]
      const int64_t c[] = {0, 2, 3};
      for (int i = 0; i < 3; ++i)
        for (int j = i + 1; j < 3; ++j)  // Eq. 2: sum over pairs
          expect += overlap(avg.index({Slice(), c[i]}), avg.index({Slice(), c[j]}));
    }
  }
  EXPECT_NEAR(set.compute(out, batch).total.item<double>(), expect / 4, 1e-12);
  // The same concepts given as token ids.
  LossSet by_id(YAML::Load("loss: {terms: [{name: segregation, groups: tokens, "
                           "concept_token_ids: [7, 8, 9]}]}"),
                2);
  batch.input = torch::tensor({{7, 1, 8, 9, 1, 1}, {7, 1, 8, 9, 1, 1}}, torch::kLong);
  EXPECT_NEAR(by_id.compute(out, batch).total.item<double>(), expect / 4, 1e-12);
}

TEST(Segregation, RetentionUsesBinarisedReference) {
  // binarize: min-max normalise then >= threshold.
  auto m = torch::tensor({0.1, 0.3, 0.5, 0.9}, torch::kDouble).view({1, 1, 4});
  auto bin = binarize_maps(m, 0.5);
  EXPECT_TRUE(torch::equal(bin.view({4}), torch::tensor({0.0, 0.0, 1.0, 1.0}, torch::kDouble)));
  // A binary map against itself gives the minimum 0.5; a map outside the region gives 1.
  EXPECT_NEAR(retention_loss(bin, bin).item<double>(), 0.5, 1e-15);
  auto outside = torch::tensor({0.7, 0.3, 0.0, 0.0}, torch::kDouble).view({1, 1, 4});
  EXPECT_NEAR(retention_loss(outside, bin).item<double>(), 1.0, 1e-15);

  // Term: with `previous`, the second call's reference is the first call's map.
  LossSet set(YAML::Load("loss: {terms: [{name: segregation, groups: tokens, "
                         "concept_positions: [0, 1], retention_weight: 2.0}]}"),
              1);
  ModelOutput first, second;
  Batch batch;
  first.probs[0] = random_probs(1, 2, 4);
  second.probs[0] = random_probs(1, 2, 4);
  auto maps_of = [](const torch::Tensor& p) {  // [1, 2 concepts, T_q]
    return p[0].mean(0).index({Slice(), Slice(0, 2)}).t().unsqueeze(0);
  };
  auto seg = [&](const torch::Tensor& p) { return pairwise_overlap(maps_of(p)).sum(); };
  auto r1 = set.compute(first, batch);
  auto ret1 = retention_loss(maps_of(first.probs[0]), binarize_maps(maps_of(first.probs[0]), 0.5));
  EXPECT_NEAR(r1.total.item<double>(), (seg(first.probs[0]) + 2.0 * ret1.sum()).item<double>(),
              1e-12);
  auto r2 = set.compute(second, batch);
  auto ret2 = retention_loss(maps_of(second.probs[0]), binarize_maps(maps_of(first.probs[0]), 0.5));
  EXPECT_NEAR(r2.total.item<double>(), (seg(second.probs[0]) + 2.0 * ret2.sum()).item<double>(),
              1e-12);
  EXPECT_TRUE(r2.terms.count("stat/retention/layer0"));
}

TEST(Segregation, ConfigValidation) {
  EXPECT_THROW(LossSet(YAML::Load("loss: {terms: [{name: segregation, groups: tokens}]}"), 2),
               UserError);
  EXPECT_THROW(LossSet(YAML::Load("loss: {terms: [{name: segregation, heads: [1]}]}"), 2),
               UserError);
  EXPECT_THROW(LossSet(YAML::Load("loss: {terms: [{name: segregation, groups: rows}]}"), 2),
               UserError);
  EXPECT_THROW(
      LossSet(YAML::Load("loss: {terms: [{name: segregation, concept_positions: [1, 2]}]}"), 2),
      UserError);
}
