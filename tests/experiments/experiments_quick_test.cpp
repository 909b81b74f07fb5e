// `experiments/run_all.sh --quick`: every shipped experiment script runs end to end (tiny
// settings: 4 steps, width 32, 12 documents) through the real binary, writes its results into the
// given folder, and leaves the committed experiments/*/results.md untouched. Numbers from it mean
// nothing; the test catches scripts that rot (a renamed key, a changed output).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "tests/support/attnlab_command.h"

namespace fs = std::filesystem;

namespace {

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST(Experiments, RunAllQuickRunsEveryScript) {
  const fs::path source(ATTNLAB_SOURCE_DIR);
  const fs::path root = fs::path(ATTNLAB_BINARY_DIR) / "test_train_tmp" / "run_all_quick";
  fs::remove_all(root);
  std::map<fs::path, std::string> committed;
  for (const auto& entry : fs::recursive_directory_iterator(source / "experiments"))
    if (entry.path().extension() == ".md" &&
        entry.path().filename().string().rfind("results", 0) == 0)
      committed[entry.path()] = read(entry.path());
  ASSERT_GE(committed.size(), 7u);

  const std::string command =
      "ATTNLAB_BIN='" + std::string(ATTNLAB_BINARY_DIR) + "/attnlab' timeout 600 '" +
      (source / "experiments/run_all.sh").string() + "' --quick '" + root.string() + "'";
  const auto run = attnlab::testing::run_command(command);
  const std::string& output = run.output;
  ASSERT_EQ(run.exit_code, 0) << output;
  EXPECT_NE(output.find("quick pass: every experiment ran end to end"), std::string::npos)
      << output;

  for (const char* name :
       {"length_extrapolation", "ar_to_dlm", "decorrelation", "focal", "pretrained_conversion"})
    EXPECT_GT(fs::file_size(root / "results" / name / "results.md"), 100u) << name;
  EXPECT_TRUE(fs::exists(root / "results" / "length_extrapolation" / "extrapolation.png"));
  // The block-size sweep: one row per block size, L' = 16 taken from the ar_to_dlm runs.
  const std::string blocks = read(root / "results" / "ar_to_dlm_blocks" / "results_block_sweep.md");
  for (const char* row : {"| 4 |", "| 16 |", "| 64 |", "| 128 |"})
    EXPECT_NE(blocks.find(row), std::string::npos) << row << " missing from\n" << blocks;
  EXPECT_NE(read(root / "ar_to_dlm_blocks.log").find("block 16: every seed's runs are there"),
            std::string::npos);
  EXPECT_TRUE(fs::exists(root / "dataset_decomposition" / "summary.md"));
  EXPECT_TRUE(fs::exists(root / "grades" / "finetune" / "summary.md"));
  EXPECT_TRUE(fs::exists(root / "attention_ablation" / "summary.md"));
  EXPECT_TRUE(fs::exists(root / "moh_ablation" / "summary.md"));
  for (const auto& [path, text] : committed)
    EXPECT_EQ(read(path), text) << path << " was rewritten by a quick pass";
  fs::remove_all(root);
}
