// LossSet composition: the tap union (and no prob/hidden taps unless a term needs them), the
// total = sum of weighted terms + module aux losses with separate reporting, and config errors.
#include "losses/loss_set.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "common/error.h"

using namespace attnlab;

namespace {
std::string error_of(const std::string& yaml) {
  try {
    LossSet(YAML::Load(yaml), 4);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(LossSet, TapsAreTheUnionOfTheTerms) {
  LossSet ce(YAML::Load("loss: {terms: [{name: cross_entropy, weight: 1.0}]}"), 4);
  EXPECT_TRUE(ce.taps().logits);
  EXPECT_TRUE(ce.taps().hidden_layers.empty());
  EXPECT_TRUE(ce.taps().prob_layers.empty());

  LossSet all(YAML::Load(R"(
loss:
  terms:
    - {name: cross_entropy, weight: 1.0}
    - {name: decorrelation, weight: 0.1, layers: [0, 2]}
    - {name: segregation, weight: 0.5, layers: [1, 3]}
    - {name: segregation, weight: 0.5, layers: [3, 2]}
)"),
              4);
  TapRequest taps = all.taps();
  EXPECT_TRUE(taps.logits);
  EXPECT_EQ(taps.hidden_layers, (std::set<int64_t>{0, 2}));
  EXPECT_EQ(taps.prob_layers, (std::set<int64_t>{1, 2, 3}));

  LossSet no_logits(YAML::Load("loss: {terms: [{name: decorrelation}]}"), 4);
  EXPECT_FALSE(no_logits.taps().logits);
  EXPECT_TRUE(no_logits.taps().prob_layers.empty());
}

TEST(LossSet, TotalIsWeightedTermsPlusAuxLossesReportedSeparately) {
  torch::manual_seed(11);
  LossSet set(YAML::Load(R"(
loss:
  terms:
    - {name: cross_entropy, weight: 0.5}
    - {name: decorrelation, weight: 2.0, layers: [1]}
    - {name: cross_entropy, weight: 3.0, label_smoothing: 0.1}
)"),
              2);
  ModelOutput out;
  Batch batch;
  out.logits = torch::randn({2, 4, 5}, torch::dtype(torch::kDouble).requires_grad(true));
  out.hidden[1] = torch::randn({2, 4, 3}, torch::kDouble);
  out.aux_losses["moh_balance"] = torch::tensor(0.25, torch::kDouble);
  batch.target = torch::randint(5, {2, 4}, torch::kLong);
  LossResult r = set.compute(out, batch);
  const auto& t = r.terms;
  ASSERT_TRUE(t.count("loss/cross_entropy") && t.count("loss/decorrelation") &&
              t.count("loss/cross_entropy_2") && t.count("aux/moh_balance") &&
              t.count("stat/bos_cos/layer1"));
  double expect = 0.5 * t.at("loss/cross_entropy").item<double>() +
                  2.0 * t.at("loss/decorrelation").item<double>() +
                  3.0 * t.at("loss/cross_entropy_2").item<double>() + 0.25;
  EXPECT_NEAR(r.total.item<double>(), expect, 1e-12);
  EXPECT_GT(t.at("loss/cross_entropy_2").item<double>(),
            t.at("loss/cross_entropy").item<double>() - 1);
  EXPECT_TRUE(r.total.requires_grad());
}

TEST(LossSet, ConfigErrorsNameKeysAndListChoices) {
  std::string unknown = error_of("loss: {terms: [{name: cross_entropy}, {name: focall}]}");
  EXPECT_NE(unknown.find("loss.terms[1].name"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("cross_entropy, decorrelation, focal, segregation"), std::string::npos)
      << unknown;
  std::string bad_key = error_of("loss: {terms: [{name: focal, gama: 2}]}");
  EXPECT_NE(bad_key.find("loss.terms[0].gama"), std::string::npos) << bad_key;
  EXPECT_NE(bad_key.find("gamma"), std::string::npos) << bad_key;
  EXPECT_NE(error_of("loss: {terms: [{weight: 1.0}]}").find("loss.terms[0].name"),
            std::string::npos);
  EXPECT_NE(error_of("loss: {terms: [{name: cross_entropy, weight: heavy}]}")
                .find("loss.terms[0].weight"),
            std::string::npos);
  EXPECT_NE(error_of("loss: {terms: []}").find("loss.terms"), std::string::npos);
  EXPECT_NE(error_of("model: {}").find("loss.terms"), std::string::npos);
  EXPECT_NE(error_of("loss: {terms: [cross_entropy]}").find("loss.terms[0]"), std::string::npos);
}

TEST(LossSet, ShippedConfigsParse) {
  for (const char* name : {"cross_entropy", "focal", "decorrelation", "segregation"}) {
    YAML::Node group =
        YAML::LoadFile(std::string(ATTNLAB_SOURCE_DIR) + "/configs/loss/" + name + ".yaml");
    YAML::Node config;
    config["loss"] = group;
    EXPECT_NO_THROW(LossSet(config, 4)) << name;
  }
}
