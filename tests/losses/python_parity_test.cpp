// Parity with Python references written from docs/methods.md (scripts/ref/loss_*.py, run with
// the project Python + torch 2.11 in float64): focal (sigmoid = torchvision's formula, softmax =
// AdeelH's, both smoothing readings, all reductions), decorrelation (Llama-AVSR's einsum form)
// and segregation (A-STAR Eq. 2/3 as loops) — loss values and input gradients.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "losses/decorrelation.h"
#include "losses/focal.h"
#include "losses/loss_set.h"
#include "losses/segregation.h"
#include "python_ref.h"

using namespace attnlab;
using attnlab::test::from_json;
using attnlab::test::to_json;
using nlohmann::json;

namespace {
void expect_close(const torch::Tensor& actual, const torch::Tensor& expected,
                  const std::string& what) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  EXPECT_TRUE(torch::allclose(actual.to(torch::kDouble), expected, 1e-9, 1e-11))
      << what << "\nC++:\n"
      << actual << "\nPython:\n"
      << expected;
}

FocalReduction reduction_of(const std::string& name) {
  if (name == "none") return FocalReduction::kNone;
  if (name == "sum") return FocalReduction::kSum;
  if (name == "weighted_mean") return FocalReduction::kWeightedMean;
  return FocalReduction::kMean;
}
}  // namespace

TEST(PythonParity, Focal) {
  REQUIRE_PYTHON_WITH("torch");
  torch::manual_seed(21);
  json cases = json::array();
  std::vector<std::pair<torch::Tensor, torch::Tensor>> inputs;
  std::vector<FocalOptions> options;
  auto logits = torch::randn({7, 4}, torch::kDouble) * 3;
  auto index_targets = torch::tensor({0, 3, -100, 2, 1, 1, 0}, torch::kLong);
  auto multi_label = (torch::rand({7, 4}, torch::kDouble) > 0.6).to(torch::kDouble);
  auto soft_labels = torch::rand({7, 4}, torch::kDouble);
  std::vector<double> class_alpha = {0.5, 1.5, 0.8, 1.2};
  for (std::string mode : {"softmax", "sigmoid"}) {
    for (std::string smoothing : {"pt", "soft"}) {
      for (std::string reduction : {"none", "sum", "mean", "weighted_mean"}) {
        for (int variant = 0; variant < 3; ++variant) {
          FocalOptions o;
          o.mode = mode == "softmax" ? FocalMode::kSoftmax : FocalMode::kSigmoid;
          o.smoothing = smoothing == "pt" ? FocalSmoothing::kPt : FocalSmoothing::kSoft;
          o.reduction = reduction_of(reduction);
          o.gamma = variant == 0 ? 2.0 : (variant == 1 ? 0.5 : 1.0);
          o.label_smoothing = variant == 0 ? 0.0 : 0.15;
          json c = {{"mode", mode},
                    {"gamma", o.gamma},
                    {"label_smoothing", o.label_smoothing},
                    {"smoothing_mode", smoothing},
                    {"reduction", reduction},
                    {"ignore_index", -100}};
          torch::Tensor targets = index_targets;
          if (mode == "softmax") {
            if (variant == 1) {
              o.alpha = torch::tensor(class_alpha, torch::kDouble);
              c["alpha"] = class_alpha;
            } else if (variant == 2) {
              o.alpha = torch::tensor(0.7, torch::kDouble);
              c["alpha"] = 0.7;
            }
          } else {
            targets = variant == 0 ? multi_label : (variant == 1 ? soft_labels : index_targets);
            if (variant == 2) targets = torch::tensor({0, 3, 1, 2, 1, 1, 0}, torch::kLong);
            o.alpha = torch::tensor(variant == 1 ? -1.0 : 0.25, torch::kDouble);
            c["alpha"] = variant == 1 ? -1.0 : 0.25;
          }
          c["logits"] = to_json(logits);
          c["targets"] = to_json(targets);
          cases.push_back(c);
          inputs.emplace_back(logits, targets);
          options.push_back(o);
        }
      }
    }
  }
  json results = test::run_reference("loss_focal.py", cases);
  ASSERT_EQ(results.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    auto x = inputs[i].first.clone().requires_grad_(true);
    auto loss = focal_loss(x, inputs[i].second, options[i]);
    loss.sum().backward();
    std::string what = cases[i]["mode"].get<std::string>() + "/" +
                       cases[i]["smoothing_mode"].get<std::string>() + "/" +
                       cases[i]["reduction"].get<std::string>() + " case " + std::to_string(i);
    expect_close(loss.detach(), from_json(results[i]["loss"]), what + " loss");
    expect_close(x.grad(), from_json(results[i]["grad"]), what + " grad");
  }
}

TEST(PythonParity, Decorrelation) {
  REQUIRE_PYTHON_WITH("torch");
  torch::manual_seed(22);
  json cases = json::array();
  struct Run {
    std::string yaml;
    ModelOutput out;
    Batch batch;
  };
  std::vector<Run> runs;
  for (int variant = 0; variant < 3; ++variant) {
    Run run;
    json c = {{"factor", variant == 2 ? 10000.0 : 1.5}, {"prefix_length", variant == 1 ? 3 : -1}};
    c["hidden"] = json::array();
    for (int64_t l = 0; l < 2; ++l) {
      run.out.hidden[l] = torch::randn({2, 6, 5}, torch::kDouble);
      run.out.hidden[l][0][0].mul_(20);  // a big BOS state, as sinks have
      c["hidden"].push_back(to_json(run.out.hidden[l]));
    }
    run.yaml = "loss: {terms: [{name: decorrelation, layers: [0, 1], factor: " +
               std::to_string(c["factor"].get<double>()) + "}]}";
    if (variant == 1)
      run.yaml =
          "loss: {terms: [{name: decorrelation, layers: [0, 1], factor: 1.5, "
          "prefix_length: 3}]}";
    if (variant == 2) {
      run.batch.loss_mask = torch::rand({2, 6}) > 0.4;
      run.batch.loss_mask[0][2] = true;
      c["mask"] = to_json(run.batch.loss_mask);
      run.yaml =
          "loss: {terms: [{name: decorrelation, layers: [0, 1], factor: 10000, "
          "token_mask: loss_mask}]}";
    }
    cases.push_back(c);
    runs.push_back(std::move(run));
  }
  json results = test::run_reference("loss_decorrelation.py", cases);
  for (size_t i = 0; i < runs.size(); ++i) {
    LossSet set(YAML::Load(runs[i].yaml), 3);
    for (auto& [l, h] : runs[i].out.hidden) h.requires_grad_(true);
    auto total = set.compute(runs[i].out, runs[i].batch).total;
    total.backward();
    expect_close(total.detach(), from_json(results[i]["loss"]),
                 "decorrelation loss " + runs[i].yaml);
    for (int64_t l = 0; l < 2; ++l)
      expect_close(runs[i].out.hidden[l].grad(), from_json(results[i]["grads"][l]),
                   "decorrelation grad " + std::to_string(l));
  }
}

TEST(PythonParity, Segregation) {
  REQUIRE_PYTHON_WITH("torch");
  torch::manual_seed(23);
  struct Variant {
    std::string yaml;
    json spec;
  };
  std::vector<Variant> variants = {
      {"{name: segregation, layers: [0, 1]}",
       {{"groups", "heads"},
        {"heads", nullptr},
        {"pair_reduction", "mean"},
        {"retention_weight", 0.0}}},
      {"{name: segregation, layers: [0, 1], heads: [0, 2], pair_reduction: sum, "
       "retention_weight: 0.5, retention_reference: current}",
       {{"groups", "heads"},
        {"heads", {0, 2}},
        {"pair_reduction", "sum"},
        {"retention_weight", 0.5}}},
      {"{name: segregation, layers: [0, 1], groups: tokens, concept_positions: [0, 2, 4]}",
       {{"groups", "tokens"},
        {"heads", nullptr},
        {"concept_positions", {0, 2, 4}},
        {"pair_reduction", "sum"},
        {"retention_weight", 0.0}}},
      {"{name: segregation, layers: [0, 1], groups: tokens, concept_positions: [1, 3], "
       "heads: [1, 2], retention_weight: 1.0, retention_threshold: 0.3}",
       {{"groups", "tokens"},
        {"heads", {1, 2}},
        {"concept_positions", {1, 3}},
        {"pair_reduction", "sum"},
        {"retention_weight", 1.0},
        {"retention_threshold", 0.3}}},
  };
  json cases = json::array();
  std::vector<ModelOutput> outs;
  auto causal = torch::ones({5, 5}, torch::kBool).tril();
  for (auto& v : variants) {
    ModelOutput out;
    json c = v.spec;
    if (!c.contains("retention_threshold")) c["retention_threshold"] = 0.5;
    c["probs"] = json::array();
    for (int64_t l = 0; l < 2; ++l) {
      auto scores = torch::randn({2, 3, 5, 5}, torch::kDouble) * 2;
      out.probs[l] = torch::softmax(scores.masked_fill(causal.logical_not(), -INFINITY), -1);
      c["probs"].push_back(to_json(out.probs[l]));
    }
    cases.push_back(c);
    outs.push_back(out);
  }
  json results = test::run_reference("loss_segregation.py", cases);
  for (size_t i = 0; i < variants.size(); ++i) {
    // First call: the `previous` reference falls back to the current map, as in the reference.
    LossSet set(YAML::Load("loss: {terms: [" + variants[i].yaml + "]}"), 2);
    for (auto& [l, p] : outs[i].probs) p.requires_grad_(true);
    auto total = set.compute(outs[i], Batch()).total;
    total.backward();
    expect_close(total.detach(), from_json(results[i]["loss"]), variants[i].yaml);
    for (int64_t l = 0; l < 2; ++l)
      expect_close(outs[i].probs[l].grad(), from_json(results[i]["grads"][l]),
                   variants[i].yaml + " grad " + std::to_string(l));
  }
}
