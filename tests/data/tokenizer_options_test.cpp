// The tokenizer group as typed options (data/tokenizers/tokenizer_options.h): every registry
// entry's configs/tokenizer/<entry>.yaml names the entry and holds exactly its struct's defaults,
// the shipped configs bind to the values the files hold, and a bad key, type or value is one
// UserError line naming the dotted key.
#include "data/tokenizers/tokenizer_options.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <variant>
#include <vector>

#include "common/error.h"
#include "config/options.h"
#include "data/tokenizers/bpe_tokenizer.h"
#include "data/tokenizers/tokenizer.h"
#include "tests/support/train_runs.h"

namespace attnlab {
namespace {

std::string tokenizer_error(const std::string& yaml) {
  try {
    tokenizer_options(YAML::Load(yaml));
  } catch (const UserError& error) {
    return error.what();
  }
  return "";
}

TEST(TokenizerOptions, ShippedFilesHoldTheStructDefaults) {
  size_t compared = 0;
  for (const auto& name : tokenizer_registry().names()) {
    SCOPED_TRACE("configs/tokenizer/" + name + ".yaml");
    const YAML::Node file =
        YAML::LoadFile(std::string(ATTNLAB_SOURCE_DIR) + "/configs/tokenizer/" + name + ".yaml");
    EXPECT_EQ(file["name"].IsDefined() ? file["name"].as<std::string>() : "(no name)", name);
    const config::BindScope scope{"tokenizer '" + name + "'", {"name"}};
    const std::vector<std::string> differences = std::visit(
        [&](const auto& defaults) {
          using Options = std::decay_t<decltype(defaults)>;
          return config::differing_defaults<Options>(file, "tokenizer", scope);
        },
        tokenizer_registry().get(name).defaults);
    std::string lines;
    for (const auto& line : differences) lines += line + "\n";
    EXPECT_EQ(lines, "");
    ++compared;
  }
  EXPECT_EQ(compared, 4u);
}

TEST(TokenizerOptions, ShippedConfigsBindToTheFilesValues) {
  const TokenizerOptions byte = tokenizer_options(attnlab::testing::compose_shipped({}));
  EXPECT_TRUE(std::holds_alternative<ByteTokenizerOptions>(byte));
  const YAML::Node bpe_config =
      attnlab::testing::compose_shipped({"tokenizer=bpe", "tokenizer.vocab_size=512"});
  const TokenizerOptions bpe = tokenizer_options(bpe_config);
  ASSERT_TRUE(std::holds_alternative<BpeTokenizerOptions>(bpe));
  EXPECT_EQ(std::get<BpeTokenizerOptions>(bpe).vocab_size(), 512);
  EXPECT_EQ(std::get<BpeTokenizerOptions>(bpe).model_path(), std::nullopt);
  EXPECT_EQ(tokenizer_max_train_bytes(bpe_config), 32000000);
  const TokenizerOptions hf = tokenizer_options(attnlab::testing::compose_shipped(
      {"tokenizer=hf", "tokenizer.path=/m", "tokenizer.eos=</s>"}));
  ASSERT_TRUE(std::holds_alternative<HfTokenizerConfigOptions>(hf));
  EXPECT_EQ(std::get<HfTokenizerConfigOptions>(hf).path(), std::optional<std::string>("/m"));
  EXPECT_EQ(std::get<HfTokenizerConfigOptions>(hf).eos(), std::optional<std::string>("</s>"));
  EXPECT_EQ(std::get<HfTokenizerConfigOptions>(hf).bos(), std::nullopt);
}

TEST(TokenizerOptions, BadKeysAndValuesNameTheDottedKey) {
  EXPECT_EQ(tokenizer_error("tokenizer: {name: bpe, vocab_size: 0}"),
            "tokenizer.vocab_size: expected a number >= 1, got 0");
  EXPECT_EQ(tokenizer_error("tokenizer: {name: bpe, max_train_bytes: -1}"),
            "tokenizer.max_train_bytes: expected a number >= 0, got -1");
  EXPECT_EQ(tokenizer_error("tokenizer: {name: bpe, threads: two}"),
            "tokenizer.threads: expected int, got 'two'");
  // A key of another tokenizer is an error, not a silently ignored setting.
  EXPECT_EQ(tokenizer_error("tokenizer: {name: byte, vocab_size: 512}")
                .rfind("tokenizer.vocab_size: tokenizer 'byte' has no option 'vocab_size'", 0),
            0u);
  EXPECT_EQ(tokenizer_error("tokenizer: {name: hf, pth: /m}")
                .rfind("tokenizer.pth: tokenizer 'hf' has no option 'pth'; its options: path, "
                       "bos, eos, mask (did you mean path?)",
                       0),
            0u);
  EXPECT_NE(tokenizer_error("tokenizer: {name: wordpiece}").find("'wordpiece'"), std::string::npos);
  EXPECT_EQ(tokenizer_error("tokenizer: {name: bpe, vocab_size: 0}").find('\n'), std::string::npos);
  // Not bpe: nothing trains, so no byte budget.
  EXPECT_EQ(tokenizer_max_train_bytes(YAML::Load("tokenizer: {name: byte}")), 0);
}

}  // namespace
}  // namespace attnlab
