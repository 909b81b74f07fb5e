// The CSV/TSV/JSONL reader of data=labelled_files (data/corpora/labelled_files.cpp) under damaged
// input: thousands of seeded mutations of valid files (byte flips, truncations, inserted quotes,
// separators, line breaks and binary bytes) each give a dataset or a UserError naming the file,
// never another exception, a crash or a hang. A cheap stand-in for the libFuzzer target that the
// token-shard and checkpoint readers have (fuzz/readers/), run in the normal suite.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "common/error.h"
#include "data/corpora/labelled_files.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

std::string mutate(std::string text, std::mt19937_64& rng) {
  static const std::string kInserts[] = {"\"",
                                         ",",
                                         "\t",
                                         "\n",
                                         "\r\n",
                                         "\"\"",
                                         "{",
                                         "}",
                                         ":",
                                         "\xEF\xBB\xBF",
                                         std::string(1, '\0'),
                                         "\xff\xfe",
                                         "\\"};
  const int edits = 1 + static_cast<int>(rng() % 6);
  for (int e = 0; e < edits && !text.empty(); ++e) {
    const size_t at = rng() % text.size();
    switch (rng() % 4) {
      case 0:
        text[at] = static_cast<char>(rng() % 256);
        break;  // flip a byte
      case 1:
        text.resize(at);
        break;  // truncate
      case 2:
        text.insert(at, kInserts[rng() % (sizeof(kInserts) / sizeof(kInserts[0]))]);
        break;
      default:
        text.erase(at, 1 + rng() % 8);
        break;
    }
  }
  return text;
}

TEST(LabelledFilesMutations, DamagedFilesGiveADatasetOrAUserError) {
  const fs::path dir =
      fs::temp_directory_path() / ("attnlab_labelled_mutations_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string csv =
      "id,text,label\n1,\"a, \"\"quoted\"\" text\",pos\n2,plain text,neg\n3,\"two\nlines\",pos\n";
  const std::string jsonl =
      "{\"text\": \"hello\", \"label\": 1}\n{\"text\": \"x\\ny\", \"label\": \"two\"}\n\n"
      "{\"text\": \"z\", \"label\": 3}\n";
  std::mt19937_64 rng(20261129);
  int parsed = 0, rejected = 0;
  for (int i = 0; i < 3000; ++i) {
    const bool is_csv = i % 3 != 2;
    const fs::path path = dir / (is_csv ? (i % 3 ? "m.tsv" : "m.csv") : "m.jsonl");
    std::string base = is_csv ? csv : jsonl;
    if (path.extension() == ".tsv")
      for (char& c : base) c = c == ',' ? '\t' : c;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << mutate(base, rng);
    LabelledDatasetOptions options;
    options.train_files = {path};
    try {
      const LabelledDataset dataset = load_labelled_files(options);
      ASSERT_FALSE(dataset.classes.empty());
      for (const auto& example : dataset.examples) {
        ASSERT_GE(example.label, 0);
        ASSERT_LT(example.label, static_cast<int64_t>(dataset.classes.size()));
      }
      ++parsed;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
      ++rejected;
    } catch (const std::exception& e) {
      FAIL() << "mutation " << i << " threw a non-UserError: " << e.what();
    }
  }
  // Both outcomes happen: the mutations are neither all harmless nor all fatal.
  EXPECT_GT(parsed, 100);
  EXPECT_GT(rejected, 100);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace attnlab
