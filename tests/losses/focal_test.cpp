// Focal loss: gamma = 0 reduces to PyTorch's cross-entropy (alpha weights, ignore_index, label
// smoothing, all reductions), gradients stay finite as p -> 1, alpha auto, and the term wiring.
#include "losses/focal.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "losses/loss_set.h"

using namespace attnlab;
namespace F = torch::nn::functional;

namespace {

struct Case {
  torch::Tensor logits, targets, alpha;
};

Case make_case(torch::Dtype dtype = torch::kDouble) {
  torch::manual_seed(3);
  Case c;
  c.logits = torch::randn({12, 5}, dtype) * 2;
  c.targets = torch::randint(5, {12}, torch::kLong);
  c.targets[2] = -100;
  c.targets[7] = -100;
  c.alpha = torch::rand({5}, torch::kDouble) + 0.3;
  return c;
}

torch::Tensor torch_ce_per_sample(const Case& c, double eps, bool weighted) {
  auto o =
      F::CrossEntropyFuncOptions().ignore_index(-100).label_smoothing(eps).reduction(torch::kNone);
  if (weighted) o = o.weight(c.alpha);
  return F::cross_entropy(c.logits, c.targets, o);
}

}  // namespace

TEST(Focal, GammaZeroEqualsCrossEntropyAllReductions) {
  Case c = make_case();
  for (double eps : {0.0, 0.1}) {
    for (auto smoothing : {FocalSmoothing::kPt, FocalSmoothing::kSoft}) {
      FocalOptions o;
      o.gamma = 0.0;
      o.alpha = c.alpha;
      o.label_smoothing = eps;
      o.smoothing = smoothing;
      // Per-sample: identical to F.cross_entropy(weight=alpha, label_smoothing, reduction=none).
      o.reduction = FocalReduction::kNone;
      auto per = focal_loss(c.logits, c.targets, o);
      auto ref = torch_ce_per_sample(c, eps, true);
      EXPECT_TRUE(torch::allclose(per, ref, 1e-10, 1e-12)) << eps;
      // weighted_mean == F.cross_entropy(weight=alpha) (divides by sum of alpha_y).
      o.reduction = FocalReduction::kWeightedMean;
      auto ce_w = F::cross_entropy(
          c.logits, c.targets,
          F::CrossEntropyFuncOptions().weight(c.alpha).ignore_index(-100).label_smoothing(eps));
      EXPECT_NEAR(focal_loss(c.logits, c.targets, o).item<double>(), ce_w.item<double>(), 1e-10);
      // mean divides by the 10 non-ignored samples; sum is the plain sum.
      o.reduction = FocalReduction::kMean;
      EXPECT_NEAR(focal_loss(c.logits, c.targets, o).item<double>(), ref.sum().item<double>() / 10,
                  1e-10);
      o.reduction = FocalReduction::kSum;
      EXPECT_NEAR(focal_loss(c.logits, c.targets, o).item<double>(), ref.sum().item<double>(),
                  1e-10);
      // Without alpha, mean == F.cross_entropy's mean.
      o.alpha = torch::Tensor();
      o.reduction = FocalReduction::kMean;
      auto ce =
          F::cross_entropy(c.logits, c.targets,
                           F::CrossEntropyFuncOptions().ignore_index(-100).label_smoothing(eps));
      EXPECT_NEAR(focal_loss(c.logits, c.targets, o).item<double>(), ce.item<double>(), 1e-10);
    }
  }
}

TEST(Focal, GammaDownWeightsEasyExamples) {
  // Independent check of the softmax formula: -(1-p_y)^g log p_y on a 2-class example.
  auto logits = torch::tensor({{2.0, 0.0}}, torch::kDouble);
  auto target = torch::tensor({0}, torch::kLong);
  FocalOptions o;
  o.gamma = 2.0;
  double p = 1.0 / (1.0 + std::exp(-2.0));
  EXPECT_NEAR(focal_loss(logits, target, o).item<double>(), -std::pow(1 - p, 2) * std::log(p),
              1e-12);
  o.smoothing = FocalSmoothing::kSoft;
  o.label_smoothing = 0.2;  // q = (0.9, 0.1)
  double expect = -0.9 * std::pow(1 - p, 2) * std::log(p) - 0.1 * std::pow(p, 2) * std::log(1 - p);
  EXPECT_NEAR(focal_loss(logits, target, o).item<double>(), expect, 1e-12);
}

TEST(Focal, SigmoidGammaZeroIsBceAndTorchvisionForm) {
  torch::manual_seed(5);
  auto x = torch::randn({6, 3}, torch::kDouble) * 3;
  auto y = (torch::rand({6, 3}, torch::kDouble) > 0.5).to(torch::kDouble);
  FocalOptions o;
  o.mode = FocalMode::kSigmoid;
  o.gamma = 0.0;
  o.alpha = torch::tensor(-1.0, torch::kDouble);  // disabled
  auto bce = F::binary_cross_entropy_with_logits(x, y);
  EXPECT_NEAR(focal_loss(x, y, o).item<double>(), bce.item<double>(), 1e-12);
  // Class-index targets are one-hot encoded over the last dim.
  auto idx = torch::tensor({0, 2, 1, 1, 0, 2}, torch::kLong);
  auto onehot = torch::one_hot(idx, 3).to(torch::kDouble);
  EXPECT_NEAR(focal_loss(x, idx, o).item<double>(), focal_loss(x, onehot, o).item<double>(), 1e-12);
  // Hand-written torchvision formula (alpha = 0.25, gamma = 2), mean reduction.
  o.gamma = 2.0;
  o.alpha = torch::tensor(0.25, torch::kDouble);
  auto p = torch::sigmoid(x);
  auto ce = F::binary_cross_entropy_with_logits(
      x, y, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  auto pt = p * y + (1 - p) * (1 - y);
  auto ref = ((0.25 * y + 0.75 * (1 - y)) * (1 - pt).pow(2) * ce).mean();
  EXPECT_NEAR(focal_loss(x, y, o).item<double>(), ref.item<double>(), 1e-12);
}

TEST(Focal, FiniteGradientsAsProbabilityGoesToOne) {
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    for (double big : {30.0, 60.0}) {
      // Confident-correct, confident-wrong and one ignored sample.
      auto logits = torch::tensor({{big, -big, 0.0}, {-big, big, 0.0}, {big, 0.0, -big}}, dtype);
      auto targets = torch::tensor({0, 0, -100}, torch::kLong);
      for (double gamma : {0.0, 0.5, 2.0}) {
        for (auto smoothing : {FocalSmoothing::kPt, FocalSmoothing::kSoft}) {
          for (auto mode : {FocalMode::kSoftmax, FocalMode::kSigmoid}) {
            FocalOptions o;
            o.mode = mode;
            o.gamma = gamma;
            o.label_smoothing = 0.1;
            o.smoothing = smoothing;
            auto x = logits.clone().requires_grad_(true);
            auto loss = focal_loss(x, targets, o);
            loss.backward();
            EXPECT_TRUE(torch::isfinite(loss).item<bool>()) << big << " " << gamma;
            EXPECT_TRUE(torch::isfinite(x.grad()).all().item<bool>())
                << "dtype " << dtype << " big " << big << " gamma " << gamma;
          }
        }
      }
    }
  }
}

TEST(Focal, AlphaAutoIsInverseFrequencyWithMeanOne) {
  auto alpha = inverse_frequency_alpha({10, 30, 60});
  EXPECT_NEAR(alpha.mean().item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(alpha[0].item<double>() / alpha[1].item<double>(), 3.0, 1e-12);
  EXPECT_NEAR(alpha[0].item<double>() / alpha[2].item<double>(), 6.0, 1e-12);

  LossSet set(YAML::Load("loss: {terms: [{name: focal, alpha: auto, gamma: 1.0}]}"), 2);
  ModelOutput out;
  Batch batch;
  out.logits = torch::randn({4, 3}, torch::kDouble);
  batch.labels = torch::tensor({0, 1, 2, 1}, torch::kLong);
  EXPECT_THROW(set.compute(out, batch), UserError);  // counts not given yet
  set.set_class_counts({10, 30, 60});
  FocalOptions o;
  o.gamma = 1.0;
  o.alpha = alpha;
  EXPECT_NEAR(set.compute(out, batch).total.item<double>(),
              focal_loss(out.logits, batch.labels, o).item<double>(), 1e-12);
}

TEST(Focal, TermOnTokenLogitsHonoursLossMask) {
  torch::manual_seed(9);
  LossSet set(YAML::Load("loss: {terms: [{name: focal, gamma: 2.0}]}"), 2);
  ModelOutput out;
  Batch batch;
  out.logits = torch::randn({2, 4, 6}, torch::kDouble);
  batch.target = torch::randint(6, {2, 4}, torch::kLong);
  batch.loss_mask = torch::tensor({{1, 1, 0, 1}, {0, 1, 1, 1}}, torch::kBool);
  auto keep = batch.loss_mask.reshape({-1});
  FocalOptions o;
  auto ref = focal_loss(out.logits.reshape({-1, 6}).index({keep}),
                        batch.target.reshape({-1}).index({keep}), o);
  EXPECT_NEAR(set.compute(out, batch).total.item<double>(), ref.item<double>(), 1e-12);
}

TEST(Focal, ConfigErrorsNameTheKey) {
  auto expect_error = [](const std::string& yaml, const std::string& fragment) {
    try {
      LossSet(YAML::Load(yaml), 2);
      ADD_FAILURE() << "no error for " << yaml;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error("loss: {terms: [{name: focal, mode: softmx}]}", "loss.terms[0].mode");
  expect_error("loss: {terms: [{name: focal, gamma: abc}]}", "loss.terms[0].gamma");
  expect_error("loss: {terms: [{name: focal, mode: sigmoid, alpha: auto}]}", "loss.terms[0].alpha");
  expect_error("loss: {terms: [{name: focal, reduction: avg}]}", "weighted_mean");
}
