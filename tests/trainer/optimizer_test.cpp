// Parameter-group assignment (decay / no-decay / LR multipliers), freezing and their effect on
// a real AdamW step; the optimizer registry (optim=sgd: a real Nesterov SGD step against the
// formula, per-optimizer keys).
#include "trainer/optimizer.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "tests/trainer/trainer_test_util.h"

namespace attnlab {
namespace {
using testing::TinyModel;

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(Optimizer, DecayAndNoDecayGroups) {
  TinyModel model;
  auto setup = make_optimizer(*model, YAML::Load("optim: {lr: 0.01, weight_decay: 0.5}"));
  ASSERT_EQ(setup.groups.size(), 2u);
  ASSERT_EQ(setup.optimizer->param_groups().size(), 2u);
  std::vector<std::string> decay, no_decay;
  for (size_t i = 0; i < setup.groups.size(); ++i) {
    auto& options =
        static_cast<torch::optim::AdamWOptions&>(setup.optimizer->param_groups()[i].options());
    EXPECT_EQ(setup.optimizer->param_groups()[i].params().size(), setup.groups[i].names.size());
    EXPECT_DOUBLE_EQ(options.lr(), 0.01);
    EXPECT_DOUBLE_EQ(options.weight_decay(), setup.groups[i].decay ? 0.5 : 0.0);
    auto& names = setup.groups[i].decay ? decay : no_decay;
    names.insert(names.end(), setup.groups[i].names.begin(), setup.groups[i].names.end());
  }
  EXPECT_EQ(sorted(decay), (std::vector<std::string>{"blocks.0.fc.weight", "blocks.1.fc.weight"}));
  EXPECT_EQ(sorted(no_decay),
            (std::vector<std::string>{"blocks.0.fc.bias", "blocks.0.norm", "blocks.1.fc.bias",
                                      "blocks.1.norm", "embed.weight", "final_norm.bias",
                                      "final_norm.weight"}));
}

TEST(Optimizer, WeightDecayOnlyTouchesDecayGroup) {
  // With zero gradients AdamW's update is pure decay: p <- p * (1 - lr * wd) for decay params,
  // unchanged for no-decay params.
  TinyModel model;
  auto setup = make_optimizer(*model, YAML::Load("optim: {lr: 0.1, weight_decay: 0.5}"));
  std::map<std::string, torch::Tensor> before;
  for (auto& item : model->named_parameters()) {
    before[item.key()] = item.value().detach().clone();
    item.value().mutable_grad() = torch::zeros_like(item.value());
  }
  setup.optimizer->step();
  for (auto& item : model->named_parameters()) {
    bool decays = item.key() == "blocks.0.fc.weight" || item.key() == "blocks.1.fc.weight";
    auto expected = decays ? before[item.key()] * (1 - 0.1 * 0.5) : before[item.key()];
    EXPECT_TRUE(torch::allclose(item.value(), expected, 0, 1e-7)) << item.key();
  }
}

TEST(Optimizer, SgdStepFollowsTorchFormulaOnTheSameGroups) {
  TinyModel model;
  auto setup = make_optimizer(
      *model,
      YAML::Load("optim: {name: sgd, lr: 0.1, momentum: 0.5, nesterov: true, weight_decay: 0.2}"));
  ASSERT_NE(dynamic_cast<torch::optim::SGD*>(setup.optimizer.get()), nullptr);
  ASSERT_EQ(setup.groups.size(), 2u);
  std::map<std::string, torch::Tensor> before, grad;
  for (auto& item : model->named_parameters()) {
    before[item.key()] = item.value().detach().clone();
    grad[item.key()] = torch::full_like(item.value(), 0.3);
    item.value().mutable_grad() = grad[item.key()].clone();
  }
  setup.optimizer->step();
  for (auto& item : model->named_parameters()) {
    const bool decays = item.key() == "blocks.0.fc.weight" || item.key() == "blocks.1.fc.weight";
    // First step: buf = g + wd·p; Nesterov: d = g + wd·p + momentum·buf; p -= lr·d.
    auto g = grad[item.key()] + (decays ? 0.2 : 0.0) * before[item.key()];
    auto expected = before[item.key()] - 0.1 * (g + 0.5 * g);
    EXPECT_TRUE(torch::allclose(item.value(), expected, 0, 1e-6)) << item.key();
  }
}

TEST(Optimizer, UnknownNameAndOtherOptimizersKeysAreErrors) {
  TinyModel model;
  auto message = [&](const std::string& yaml) -> std::string {
    try {
      make_optimizer(*model, YAML::Load(yaml));
    } catch (const UserError& error) {
      return error.what();
    }
    return "";
  };
  EXPECT_NE(message("optim: {name: lion}")
                .find("unknown optimizer (optim.name) 'lion'; "
                      "available: adamw, muon, sgd"),
            std::string::npos);
  EXPECT_NE(message("optim: {name: adamw, momentum: 0.9}").find("optim.momentum"),
            std::string::npos);
  EXPECT_NE(message("optim: {name: sgd, betas: [0.9, 0.95]}").find("optim.betas"),
            std::string::npos);
  EXPECT_NE(message("optim: {name: sgd, momentum: 1.5}").find("optim.momentum"), std::string::npos);
  EXPECT_EQ(message("optim: {name: sgd, momentum: 0.0, nesterov: false}"), "");
}

TEST(Optimizer, LrMultipliersFirstMatchWinsAndSetLearningRate) {
  TinyModel model;
  auto config =
      YAML::Load("optim: {lr: 1.0}\nlr_multipliers: {'blocks.0.*': 0.1, 'blocks.*': 0.5}");
  auto setup = make_optimizer(*model, config);
  std::map<std::string, double> multiplier;
  for (const auto& g : setup.groups)
    for (const auto& n : g.names) multiplier[n] = g.lr_multiplier;
  EXPECT_DOUBLE_EQ(multiplier["blocks.0.fc.weight"], 0.1);
  EXPECT_DOUBLE_EQ(multiplier["blocks.0.norm"], 0.1);
  EXPECT_DOUBLE_EQ(multiplier["blocks.1.fc.bias"], 0.5);
  EXPECT_DOUBLE_EQ(multiplier["embed.weight"], 1.0);
  EXPECT_EQ(setup.groups.size(), 5u);  // decay x{0.1,0.5}, no_decay x{1,0.1,0.5}

  set_learning_rate(setup, /*lr_factor=*/0.02);  // optim.lr 1.0 on a schedule at 0.02
  for (size_t i = 0; i < setup.groups.size(); ++i)
    EXPECT_DOUBLE_EQ(setup.optimizer->param_groups()[i].options().get_lr(),
                     0.02 * setup.groups[i].lr_multiplier);
}

TEST(Optimizer, FreezeExcludesParameters) {
  TinyModel model;
  auto setup = make_optimizer(*model, YAML::Load("freeze: ['embed.*', 'blocks.0.fc.*']"));
  EXPECT_EQ(sorted(setup.frozen),
            (std::vector<std::string>{"blocks.0.fc.bias", "blocks.0.fc.weight", "embed.weight"}));
  EXPECT_FALSE(model->embed->weight.requires_grad());
  size_t in_optimizer = 0;
  for (const auto& g : setup.groups) {
    in_optimizer += g.names.size();
    for (const auto& n : g.names) EXPECT_EQ(n.rfind("embed", 0), std::string::npos);
  }
  EXPECT_EQ(in_optimizer, 6u);  // 9 parameters - 3 frozen
  // A real step leaves the frozen embedding untouched.
  auto embed_before = model->embed->weight.detach().clone();
  auto loss = model->forward(torch::tensor({1, 2, 3}));
  loss.backward();
  clip_gradients(setup);
  setup.optimizer->step();
  EXPECT_TRUE(torch::equal(model->embed->weight, embed_before));
}

TEST(Optimizer, PatternMatchingNothingIsUserError) {
  TinyModel model;
  try {
    make_optimizer(*model, YAML::Load("freeze: ['encoder.*']"));
    FAIL();
  } catch (const UserError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("encoder.*"), std::string::npos);
    EXPECT_NE(msg.find("embed.weight"), std::string::npos);  // shows real names
  }
  EXPECT_THROW(make_optimizer(*model, YAML::Load("lr_multipliers: {'head.*': 2.0}")), UserError);
  EXPECT_THROW(make_optimizer(*model, YAML::Load("freeze: ['*']")), UserError);
  EXPECT_THROW(make_optimizer(*model, YAML::Load("optim: {betas: [0.9]}")), UserError);
}

TEST(Optimizer, GradClipReturnsPreClipNorm) {
  TinyModel model;
  auto setup = make_optimizer(*model, YAML::Load("optim: {grad_clip: 0.001}"));
  for (auto& p : model->parameters()) p.mutable_grad() = torch::full_like(p, 1.0);
  double norm = clip_gradients(setup);
  int64_t count = 0;
  for (auto& p : model->parameters()) count += p.numel();
  EXPECT_NEAR(norm, std::sqrt(static_cast<double>(count)), 1e-4);
  double after = 0;
  for (auto& p : model->parameters()) after += p.grad().pow(2).sum().item<double>();
  EXPECT_NEAR(std::sqrt(after), 0.001, 1e-6);
}

}  // namespace
}  // namespace attnlab
