// Byte and SentencePiece-BPE tokenizers: round trips on real text (non-ASCII, whitespace runs),
// special tokens, the bpe model cache, ids equal to SentencePiece's own `spm_encode`, and
// registry errors.
#include "data/tokenizers/tokenizer.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/subprocess.h"
#include "data/corpora/corpus.h"
#include "data/data_cache.h"
#include "data/tokenizers/bpe_tokenizer.h"
#include "data/tokenizers/byte_tokenizer.h"
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
  // Real text round-trips and takes fewer tokens than bytes (the ~140 merges a 400-piece
  // vocabulary leaves room for already save a third).
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
  EXPECT_LT(tokens * 4, bytes * 3) << "tokens " << tokens << " bytes " << bytes;
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
  // The model and its content-hash sidecar.
  ASSERT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 2);
  fs::path model_file;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".model") model_file = entry.path();
  ASSERT_TRUE(fs::exists(model_file.string() + ".fnv64"));
  const auto written = fs::last_write_time(model_file);
  const auto second = BpeTokenizer::train_or_load(texts, options, dir);
  EXPECT_EQ(second->fingerprint(), first->fingerprint());
  EXPECT_EQ(fs::last_write_time(model_file), written);  // loaded, not retrained
  options.vocab_size = 450;
  const auto third = BpeTokenizer::train_or_load(texts, options, dir);
  EXPECT_NE(third->fingerprint(), first->fingerprint());
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 4);
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
  EXPECT_THROW(BpeTokenizer::train({"some text"}, options, test::temp_dir()), UserError);
  EXPECT_THROW(BpeTokenizer("not a model", "bogus.model"), UserError);
}

// attnlab encodes in process (libsentencepiece cannot share a process with LibTorch): its ids
// must be exactly the ones SentencePiece itself produces for the same model.
TEST(BpeTokenizer, IdsEqualSentencePiecesOwnEncoder) {
  const auto texts = training_texts();
  BpeTrainOptions options;
  options.vocab_size = 1500;
  const fs::path dir = test::temp_dir() / "bpe_parity";
  const auto tokenizer = BpeTokenizer::train_or_load(texts, options, dir);
  fs::path model;  // the cached model (the folder also holds its hash sidecar)
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".model") model = entry.path();
  ASSERT_FALSE(model.empty());

  // Held-out lines (the validation split) plus edge cases; spm_encode works line by line.
  const YAML::Node config = test::data_config("bpe");
  CorpusSplit split = load_split(corpus_spec(config), data_cache_dir(config));
  std::vector<std::string> lines = {"naïve café — “quotes” 日本語テキスト emoji 🎉🐳",
                                    "  multiple   spaces\tand a tab  ", "12345 67.89 I'm can't",
                                    "<mask> <s> </s> are plain text", "x"};
  for (const auto& doc : split.val) {
    std::istringstream stream(doc.text);
    for (std::string line; std::getline(stream, line) && lines.size() < 400;) {
      if (!line.empty()) lines.push_back(line);
    }
  }
  ASSERT_GT(lines.size(), 50u);
  const fs::path input = dir / "lines.txt", output = dir / "ids.txt";
  {
    std::ofstream out(input);
    for (const auto& line : lines) out << line << '\n';
  }
  ASSERT_EQ(run_process({"spm_encode", "--model=" + model.string(), "--output_format=id",
                         "--input=" + input.string(), "--output=" + output.string()},
                        (dir / "spm_encode.log").string()),
            0);
  std::ifstream ids_file(output);
  size_t checked = 0, merged = 0;
  for (const auto& line : lines) {
    std::string ids_line;
    ASSERT_TRUE(std::getline(ids_file, ids_line)) << "spm_encode wrote fewer lines";
    std::vector<int32_t> expected;
    std::istringstream ids(ids_line);
    for (int32_t id; ids >> id;) expected.push_back(id);
    const auto ids_ours = tokenizer->encode(line);
    ASSERT_EQ(ids_ours, expected) << "line: " << line;
    ++checked;
    merged += ids_ours.size() < line.size();
  }
  EXPECT_EQ(checked, lines.size());
  EXPECT_GT(merged * 2, checked);  // the comparison exercised real merges, not just bytes
}

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
