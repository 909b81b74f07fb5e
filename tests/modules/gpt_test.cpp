// GPT model: causality, KV-cache decoding, overfitting one batch, taps.
#include "modules/gpt.h"

#include <gtest/gtest.h>

#include "tests/support/tiny_gpt.h"

using namespace attnlab;

namespace {

GptOptions tiny_options(const std::string& mlp = "gelu") {
  GptOptions o = attnlab::testing::tiny_gpt_options(50, 32, 2, 4, 32);
  o.n_kv_heads = 2;
  o.mlp = mlp;
  return o;
}

}  // namespace

TEST(Gpt, OutputsAtTDoNotDependOnLaterTokens) {
  torch::manual_seed(0);
  Gpt model(tiny_options());
  model->eval();
  auto tokens = torch::randint(0, 50, {2, 12}, torch::kLong);
  auto changed = tokens.clone();
  changed.narrow(1, 7, 5).random_(0, 50);
  auto a = model->forward(tokens).logits;
  auto b = model->forward(changed).logits;
  EXPECT_TRUE(torch::allclose(a.narrow(1, 0, 7), b.narrow(1, 0, 7), 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(a.narrow(1, 7, 5), b.narrow(1, 7, 5), 1e-5, 1e-6));
}

TEST(Gpt, KvCacheDecodingEqualsFullForward) {
  torch::manual_seed(1);
  Gpt model(tiny_options("swiglu"));
  model->eval();
  torch::NoGradGuard no_grad;
  auto tokens = torch::randint(0, 50, {2, 10}, torch::kLong);
  auto full = model->forward(tokens).logits;
  std::vector<KVCache> caches;
  ForwardOptions options;
  options.caches = &caches;
  auto first = model->forward(tokens.narrow(1, 0, 4), options).logits;
  std::vector<torch::Tensor> steps{first};
  for (int64_t t = 4; t < 10; ++t)
    steps.push_back(model->forward(tokens.narrow(1, t, 1), options).logits);
  EXPECT_TRUE(torch::allclose(torch::cat(steps, 1), full, 1e-5, 1e-5));
}

TEST(Gpt, OverfitsOneBatch) {
  torch::manual_seed(2);
  Gpt model(tiny_options());
  auto tokens = torch::randint(0, 50, {4, 17}, torch::kLong);
  auto input = tokens.narrow(1, 0, 16), target = tokens.narrow(1, 1, 16);
  torch::optim::AdamW optimizer(model->parameters(),
                                torch::optim::AdamWOptions(3e-3).weight_decay(0));
  double loss_value = 0;
  for (int step = 0; step < 300; ++step) {
    optimizer.zero_grad();
    auto logits = model->forward(input).logits;
    auto loss =
        torch::nn::functional::cross_entropy(logits.reshape({-1, 50}), target.reshape({-1}));
    loss.backward();
    optimizer.step();
    loss_value = loss.item<double>();
  }
  EXPECT_LT(loss_value, 0.05);
}

TEST(Gpt, ProducesOnlyRequestedTaps) {
  torch::manual_seed(3);
  Gpt model(tiny_options());
  ForwardOptions options;
  options.taps.logits = false;
  options.taps.hidden_layers = {0};
  options.taps.prob_layers = {1};
  auto out = model->forward(torch::randint(0, 50, {1, 8}, torch::kLong), options);
  EXPECT_FALSE(out.logits.defined());
  EXPECT_EQ(out.hidden.size(), 1u);
  EXPECT_EQ(out.hidden.count(0), 1u);
  ASSERT_EQ(out.probs.count(1), 1u);
  EXPECT_EQ(out.probs.size(), 1u);
  EXPECT_EQ(out.probs[1].sizes(), (std::vector<int64_t>{1, 4, 8, 8}));
  // Rows are distributions over the visible keys.
  EXPECT_TRUE(torch::allclose(out.probs[1].sum(-1), torch::ones({1, 4, 8}), 1e-5, 1e-5));
}

TEST(Gpt, ParameterNamesFollowTheDocumentedLayout) {
  Gpt model(tiny_options());
  auto params = model->named_parameters();
  for (const char* name :
       {"embed.weight", "blocks.0.attn_norm.weight", "blocks.0.attn.q_proj.weight",
        "blocks.1.attn.out_proj.weight", "blocks.1.mlp.fc_in.weight", "blocks.1.mlp_norm.weight",
        "final_norm.weight"})
    EXPECT_NE(params.find(name), nullptr) << name;
}
