// cross_entropy term: token and classification forms against PyTorch's F::cross_entropy on the
// counted tokens only, label smoothing, fp32 upcast and the all-masked edge case.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "losses/loss_set.h"

using namespace attnlab;
namespace F = torch::nn::functional;

namespace {
LossSet make_set(const std::string& term) {
  return LossSet(YAML::Load("loss: {terms: [" + term + "]}"), 2);
}
}  // namespace

TEST(CrossEntropy, TokenFormMatchesTorchOnCountedTokens) {
  torch::manual_seed(1);
  ModelOutput out;
  Batch batch;
  out.logits = torch::randn({2, 5, 7}, torch::kDouble);
  batch.target = torch::randint(7, {2, 5}, torch::kLong);
  batch.target[0][4] = -100;
  batch.loss_mask = torch::ones({2, 5}, torch::kBool);
  batch.loss_mask[1][0] = false;
  batch.loss_mask[1][1] = false;
  auto keep = (batch.target != -100) & batch.loss_mask;
  for (double eps : {0.0, 0.2}) {
    auto set = make_set("{name: cross_entropy, label_smoothing: " + std::to_string(eps) + "}");
    auto ref = F::cross_entropy(out.logits.index({keep}), batch.target.index({keep}),
                                F::CrossEntropyFuncOptions().label_smoothing(eps));
    auto result = set.compute(out, batch);
    EXPECT_NEAR(result.total.item<double>(), ref.item<double>(), 1e-12);
    EXPECT_NEAR(result.terms.at("loss/cross_entropy").item<double>(), ref.item<double>(), 1e-12);
  }
}

TEST(CrossEntropy, ClassificationWithTwoDimensionalLogits) {
  torch::manual_seed(2);
  ModelOutput out;
  Batch batch;
  out.logits = torch::randn({6, 4}, torch::kDouble);
  batch.labels = torch::tensor({0, 3, 2, 1, 1, 0}, torch::kLong);
  auto ref = F::cross_entropy(out.logits, batch.labels);
  EXPECT_NEAR(make_set("{name: cross_entropy}").compute(out, batch).total.item<double>(),
              ref.item<double>(), 1e-12);
}

TEST(CrossEntropy, HalfLogitsAreUpcastAndAllMaskedIsZero) {
  torch::manual_seed(3);
  ModelOutput out;
  Batch batch;
  auto logits32 = torch::randn({1, 3, 50}) * 4;
  out.logits = logits32.to(torch::kBFloat16);
  batch.target = torch::randint(50, {1, 3}, torch::kLong);
  auto set = make_set("{name: cross_entropy}");
  auto loss = set.compute(out, batch).total;
  EXPECT_EQ(loss.scalar_type(), torch::kFloat);
  auto ref =
      F::cross_entropy(out.logits.to(torch::kFloat).reshape({3, 50}), batch.target.reshape({3}));
  EXPECT_NEAR(loss.item<float>(), ref.item<float>(), 1e-5);
  batch.loss_mask = torch::zeros({1, 3}, torch::kBool);
  auto zero = set.compute(out, batch).total;
  EXPECT_EQ(zero.item<float>(), 0.0f);
}
