// Classification inputs and the encoder classifier: tokenization with the BOS/[CLS] prefix and
// truncation, padded batches, the epoch sampler (every example once per epoch, exact resume from
// its state), parameter names, and that padding is invisible while every real token is seen.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <set>

#include "common/error.h"
#include "data/tokenizers/tokenizer.h"
#include "io/weights_io.h"
#include "modules/sequence_classifier.h"
#include "tasks/classification/classification_data.h"
#include "tests/support/tiny_gpt.h"

using namespace attnlab;

namespace {

GptOptions tiny_encoder() {
  GptOptions o = attnlab::testing::tiny_gpt_options(40, 16, 2, 2, 16);
  o.mask.kind = MaskKind::kBidirectional;
  return o;
}

std::unique_ptr<Tokenizer> byte_tokenizer() {
  YAML::Node config;
  config["tokenizer"]["name"] = "byte";
  return load_tokenizer(config);
}

}  // namespace

TEST(ClassificationData, EncodeAddsBosAndTruncates) {
  auto tokenizer = byte_tokenizer();
  std::vector<LabelledExample> examples = {{"a", "hello world", 1}, {"b", "hi", 0}};
  EncodedExamples encoded = encode_examples(examples, *tokenizer, 6, 0);
  ASSERT_EQ(encoded.size(), 2);
  EXPECT_EQ(encoded.tokens[0], (std::vector<int32_t>{tokenizer->bos(), 'h', 'e', 'l', 'l', 'o'}));
  EXPECT_EQ(encoded.tokens[1], (std::vector<int32_t>{tokenizer->bos(), 'h', 'i'}));
  EXPECT_EQ(encoded.labels, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(encode_examples(examples, *tokenizer, 6, 3).tokens[0].size(), 4u);  // byte cap
  EXPECT_THROW(encode_examples(examples, *tokenizer, 1, 0), UserError);

  Batch batch = make_example_batch(encoded, {1, 0}, tokenizer->pad());
  ASSERT_EQ(batch.input.sizes(), (std::vector<int64_t>{2, 6}));
  EXPECT_EQ(batch.input[0][3].item<int64_t>(), tokenizer->pad());
  EXPECT_TRUE(torch::equal(batch.key_padding.sum(1), torch::tensor({3, 6}, torch::kLong)));
  EXPECT_TRUE(torch::equal(batch.labels, torch::tensor({0, 1}, torch::kLong)));
  auto ordered = ordered_batches(encoded, 1, tokenizer->pad());
  ASSERT_EQ(ordered.size(), 2u);
  EXPECT_EQ(ordered[1].input.size(1), 3);
}

TEST(ClassificationData, SamplerVisitsEveryExampleOncePerEpochAndResumes) {
  ExampleSampler sampler(10, 4, 7);
  std::vector<int64_t> drawn;
  for (int i = 0; i < 5; ++i)
    for (int64_t index : sampler.next()) drawn.push_back(index);
  std::set<int64_t> first(drawn.begin(), drawn.begin() + 10),
      second(drawn.begin() + 10, drawn.end());
  EXPECT_EQ(first.size(), 10u);
  EXPECT_EQ(second.size(), 10u);
  EXPECT_NE(std::vector<int64_t>(drawn.begin(), drawn.begin() + 10),
            std::vector<int64_t>(drawn.begin() + 10, drawn.end()));

  ExampleSampler a(10, 4, 7), b(10, 4, 7);
  a.next();
  a.next();
  a.next();
  b.load_state(a.state());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(a.next(), b.next());
  ExampleSampler other_seed(10, 4, 8);
  EXPECT_THROW(other_seed.load_state(a.state()), UserError);
  EXPECT_THROW(ExampleSampler(11, 4, 7).load_state(a.state()), UserError);
}

TEST(SequenceClassifier, ParameterNamesMatchTheLmAndAddTheHead) {
  torch::manual_seed(0);
  SequenceClassifier model(tiny_encoder(), 3, Pooling::kCls);
  StateDict names = state_dict(*model);
  for (const char* key :
       {"embed.weight", "blocks.0.attn.q_proj.weight", "blocks.1.mlp.fc_in.weight",
        "final_norm.weight", "classifier.weight", "classifier.bias"})
    EXPECT_TRUE(names.count(key)) << key;
  EXPECT_EQ(names.at("classifier.weight").sizes(), (std::vector<int64_t>{3, 16}));
  for (const auto& [name, value] : names) EXPECT_EQ(name.rfind("encoder", 0), std::string::npos);
  // An LM with the same options has exactly the encoder's keys.
  Gpt lm(tiny_encoder());
  StateDict lm_names = state_dict(*lm);
  EXPECT_EQ(lm_names.size() + 2, names.size());
  for (const auto& [name, value] : lm_names) EXPECT_TRUE(names.count(name)) << name;
  EXPECT_THROW(parse_pooling("max"), UserError);
}

TEST(SequenceClassifier, PaddingIsInvisibleAndEveryTokenIsSeen) {
  for (Pooling pooling : {Pooling::kCls, Pooling::kMean}) {
    torch::manual_seed(1);
    SequenceClassifier model(tiny_encoder(), 3, pooling);
    model->eval();
    auto tokens = torch::tensor({{30, 5, 6, 7, 8}}, torch::kLong);
    auto alone = model->forward(tokens, {}).logits;
    ASSERT_EQ(alone.sizes(), (std::vector<int64_t>{1, 3}));
    // The same example padded to length 8 next to a different one.
    auto padded =
        torch::tensor({{30, 5, 6, 7, 8, 0, 0, 0}, {30, 9, 9, 9, 9, 9, 9, 9}}, torch::kLong);
    auto real = padded != 0;
    real[1].fill_(true);
    auto batched = model->forward(padded, real).logits;
    EXPECT_TRUE(torch::allclose(batched[0], alone[0], 1e-5, 1e-6));
    // Bidirectional: the last token changes the pooled prediction (a causal model's CLS would not).
    auto changed = tokens.clone();
    changed[0][4] = 12;
    EXPECT_FALSE(torch::allclose(model->forward(changed, {}).logits, alone, 1e-6, 1e-7));
  }
}
