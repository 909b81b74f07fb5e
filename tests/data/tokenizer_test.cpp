// Byte and SentencePiece-BPE tokenizers: round trips on real text (non-ASCII, whitespace runs),
// special tokens, the bpe model cache, and registry errors.
#include "data/tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>

#include "common/error.h"
#include "data/bpe_tokenizer.h"
#include "data/byte_tokenizer.h"
#include "data/corpus.h"
#include "data/data_cache.h"
#include "data_test_support.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string>& samples() {
  static const std::vector<std::string> texts = {
      "Call me Ishmael. Some years ago—never mind how long precisely—having little money",
      "naïve café — “quotes” 日本語テキスト emoji 🎉🐳",
      "  multiple   spaces\n\n\ttabs\r\nand trailing   ",
      "12345 67.89 I'm can't they'll",
      "",
      "\n",
  };
  return texts;
}

TEST(ByteTokenizer, EncodesBytesAndRoundTrips) {
  ByteTokenizer tokenizer;
  EXPECT_EQ(tokenizer.encode("A\xC3\xA9"), (std::vector<int32_t>{65, 0xC3, 0xA9}));
  for (const auto& text : samples()) EXPECT_EQ(tokenizer.decode(tokenizer.encode(text)), text);
  EXPECT_EQ(tokenizer.vocab_size(), 260);
  EXPECT_EQ(tokenizer.bos(), 256);
  EXPECT_EQ(tokenizer.eos(), 257);
  EXPECT_EQ(tokenizer.pad(), 258);
  EXPECT_EQ(tokenizer.mask(), 259);
  EXPECT_EQ(tokenizer.decode({72, 257, 105}), "Hi");  // specials decode to nothing
  EXPECT_THROW(tokenizer.decode({260}), UserError);
}

#ifdef ATTNLAB_WITH_SENTENCEPIECE  // see data/bpe_tokenizer.cpp for why bpe is disabled
// The training text of the test config: the first 12 Moby Dick documents' training split.
std::vector<std::string> training_texts() {
  const YAML::Node config = test::data_config("bpe");
  CorpusSplit split = load_split(corpus_spec(config), data_cache_dir(config));
  std::vector<std::string> texts;
  for (auto& doc : split.train) texts.push_back(doc.text);
  return texts;
}

TEST(BpeTokenizer, TrainsRoundTripsAndCompresses) {
  const auto texts = training_texts();
  BpeTrainOptions options;
  options.vocab_size = 400;
  const fs::path dir = test::temp_dir() / "bpe_a";
  const auto tokenizer = BpeTokenizer::train_or_load(texts, options, dir);
  EXPECT_EQ(tokenizer->vocab_size(), 400);
  EXPECT_EQ(tokenizer->bos(), 1);
  EXPECT_EQ(tokenizer->eos(), 2);
  EXPECT_EQ(tokenizer->pad(), 3);
  EXPECT_EQ(tokenizer->mask(), 4);
  for (const auto& text : samples()) {
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(text)), text) << text;
  }
  // Real text round-trips and takes fewer tokens than bytes (merges were learned).
  size_t bytes = 0, tokens = 0;
  for (const auto& text : texts) {
    const auto ids = tokenizer->encode(text);
    ASSERT_EQ(tokenizer->decode(ids), text);
    for (int32_t id : ids) {
      ASSERT_GE(id, 0);
      ASSERT_NE(id, 0) << "unk produced despite byte fallback";
      ASSERT_LT(id, 400);
    }
    bytes += text.size(), tokens += ids.size();
  }
  EXPECT_LT(tokens * 2, bytes) << "tokens " << tokens << " bytes " << bytes;
  // "<mask>" in text is ordinary text, not the MASK id.
  const auto mask_text = tokenizer->encode("<mask>");
  EXPECT_EQ(std::count(mask_text.begin(), mask_text.end(), 4), 0);
  EXPECT_EQ(tokenizer->decode({1, 2, 3, 4}), "");
  EXPECT_THROW(tokenizer->decode({400}), UserError);
}

TEST(BpeTokenizer, CachedModelIsReusedAndKeyedBySettings) {
  const auto texts = training_texts();
  BpeTrainOptions options;
  options.vocab_size = 400;
  const fs::path dir = test::temp_dir() / "bpe_b";
  const auto first = BpeTokenizer::train_or_load(texts, options, dir);
  ASSERT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  const auto model_file = fs::directory_iterator(dir)->path();
  const auto written = fs::last_write_time(model_file);
  const auto second = BpeTokenizer::train_or_load(texts, options, dir);
  EXPECT_EQ(second->fingerprint(), first->fingerprint());
  EXPECT_EQ(fs::last_write_time(model_file), written);  // loaded, not retrained
  options.vocab_size = 450;
  const auto third = BpeTokenizer::train_or_load(texts, options, dir);
  EXPECT_NE(third->fingerprint(), first->fingerprint());
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 2);
}

TEST(BpeTokenizer, LoadedThroughTheRegistryTrainsOnTheTrainingSplit) {
  YAML::Node config = test::data_config("bpe");
  const auto tokenizer = load_tokenizer(config);
  EXPECT_EQ(tokenizer->vocab_size(), 400);
  EXPECT_TRUE(fs::exists(test::temp_dir() / "tokenizers"));
  // The same model as training on the split directly.
  BpeTrainOptions options;
  options.vocab_size = 400;
  EXPECT_EQ(tokenizer->fingerprint(),
            BpeTokenizer::train_or_load(training_texts(), options, test::temp_dir() / "bpe_c")
                ->fingerprint());
}

TEST(BpeTokenizer, BadSettingsAreUserErrors) {
  BpeTrainOptions options;
  options.vocab_size = 100;
  EXPECT_THROW(BpeTokenizer::train({"some text"}, options), UserError);
  EXPECT_THROW(BpeTokenizer("not a model", "bogus.model"), UserError);
}

#else
TEST(BpeTokenizer, DisabledBuildSaysWhyInAUserError) {
  YAML::Node config = test::data_config("bpe");
  try {
    load_tokenizer(config);
    FAIL() << "expected UserError";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find("protobuf"), std::string::npos) << error.what();
  }
}
#endif

TEST(TokenizerRegistry, UnknownNameListsTheAvailableOnes) {
  YAML::Node config = test::data_config("nope");
  try {
    load_tokenizer(config);
    FAIL() << "expected UserError";
  } catch (const UserError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("nope"), std::string::npos);
    EXPECT_NE(message.find("bpe, byte, gpt2"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace attnlab
