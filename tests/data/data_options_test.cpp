// The data group as typed options (data/data_options.h): every configs/data/*.yaml binds as its
// kind (corpus, files, spam_assassin, labelled_files) and holds exactly that kind's struct
// defaults; the shipped configs bind to the values the files hold; a bad key, type or value, or a
// key of another kind, is one UserError line naming the dotted key.
#include "data/data_options.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "common/error.h"
#include "config/options.h"
#include "tests/support/train_runs.h"

namespace attnlab {
namespace {

std::string data_error(const std::vector<std::string>& overrides) {
  try {
    data_options(attnlab::testing::compose_shipped(overrides));
  } catch (const UserError& error) {
    return error.what();
  }
  return "";
}

TEST(DataOptions, ShippedFilesHoldTheirKindsDefaults) {
  std::set<std::string> kinds;
  size_t compared = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(ATTNLAB_SOURCE_DIR) + "/configs/data")) {
    SCOPED_TRACE(entry.path().string());
    const YAML::Node file = YAML::LoadFile(entry.path().string());
    YAML::Node config;
    config["data"] = file;
    const std::string kind = data_kind(config);
    kinds.insert(kind);
    const config::BindScope scope{"data '" + kind + "'", data_loader_keys(kind)};
    const std::vector<std::string> differences = std::visit(
        [&](const auto& defaults) {
          using Options = std::decay_t<decltype(defaults)>;
          return config::differing_defaults<Options>(file, "data", scope);
        },
        data_kind_registry().get(kind).defaults);
    std::string lines;
    for (const auto& line : differences) lines += line + "\n";
    EXPECT_EQ(lines, "");
    ++compared;
  }
  EXPECT_EQ(compared, 7u);
  // Every kind has a shipped file that holds its defaults.
  EXPECT_EQ(kinds, (std::set<std::string>{"corpus", "files", "labelled_files", "spam_assassin"}));
}

TEST(DataOptions, ShippedConfigsBindToTheFilesValues) {
  const DataOptions corpus = data_options(attnlab::testing::compose_shipped({"data.seq_len=64"}));
  ASSERT_TRUE(std::holds_alternative<CorpusDataOptions>(corpus));
  EXPECT_EQ(language_model_data(corpus).seq_len(), 64);
  EXPECT_EQ(language_model_data(corpus).sampler(), "random");
  EXPECT_EQ(language_model_data(corpus).decomposition().cycles(), 4);
  EXPECT_EQ(data_cache_setting(corpus), std::nullopt);

  const DataOptions files = data_options(attnlab::testing::compose_shipped(
      {"data=files", "data.train=a.txt", "data.separator=---", "data.vocab_size=300"}));
  ASSERT_TRUE(std::holds_alternative<FilesDataOptions>(files));
  EXPECT_EQ(std::get<FilesDataOptions>(files).separator(), std::optional<std::string>("---"));
  EXPECT_EQ(std::get<FilesDataOptions>(files).vocab_size(), std::optional<int64_t>(300));
  EXPECT_EQ(std::get<FilesDataOptions>(files).format(), "auto");

  const DataOptions spam = data_options(attnlab::testing::compose_shipped({"task=classification"}));
  ASSERT_TRUE(std::holds_alternative<SpamAssassinDataOptions>(spam));
  EXPECT_EQ(std::get<SpamAssassinDataOptions>(spam).keep_headers(),
            (std::vector<std::string>{"Subject"}));
  EXPECT_EQ(labelled_data(spam).seq_len(), 128);
  EXPECT_THROW(language_model_data(spam), UserError);

  const DataOptions labelled = data_options(
      attnlab::testing::compose_shipped({"task=classification", "data=labelled_files"}));
  ASSERT_TRUE(std::holds_alternative<LabelledFilesDataOptions>(labelled));
  EXPECT_EQ(std::get<LabelledFilesDataOptions>(labelled).label_key(), "label");
}

TEST(DataOptions, BadKeysAndValuesNameTheDottedKey) {
  EXPECT_EQ(data_error({"data.seq_len=0"}), "data.seq_len: expected a number >= 1, got 0");
  EXPECT_EQ(data_error({"data.val_fraction=1.0"}),
            "data.val_fraction: expected a number < 1, got 1");
  EXPECT_EQ(data_error({"data.sampler=shuffled"}),
            "data.sampler: expected one of random, sequential, bos_aligned, "
            "dataset_decomposition, got 'shuffled'");
  EXPECT_EQ(data_error({"data.workers=-1"}), "data.workers: expected a number >= 0, got -1");
  EXPECT_EQ(data_error({"data.decomposition.cycles=0"}),
            "data.decomposition.cycles: expected a number >= 1, got 0");
  EXPECT_EQ(data_error({"data=files", "data.train=a.txt", "data.format=csv"}),
            "data.format: expected one of auto, txt, jsonl, bin, got 'csv'");
  // A key of another kind is an error, not a silently ignored setting.
  EXPECT_EQ(data_error({"++data.format=txt"})
                .rfind("data.format: data 'moby_dick' has no option 'format'; its options: ", 0),
            0u);
  EXPECT_EQ(data_error({"task=classification", "++data.max_documents=5"})
                .rfind("data.max_documents: data 'spam_assassin' has no option 'max_documents'", 0),
            0u);
  EXPECT_EQ(data_error({"task=classification", "data.dataset=imdb"}),
            "data.dataset: unknown labelled dataset 'imdb'; available: files, spam_assassin");
  EXPECT_EQ(data_error({"data.seq_len=0"}).find('\n'), std::string::npos);
}

TEST(DataOptions, NoDataGroupIsTheCorpusDefaults) {
  const DataOptions options = data_options(YAML::Load("seed: 1"));
  ASSERT_TRUE(std::holds_alternative<CorpusDataOptions>(options));
  EXPECT_EQ(language_model_data(options).max_documents(), 0);
}

}  // namespace
}  // namespace attnlab
