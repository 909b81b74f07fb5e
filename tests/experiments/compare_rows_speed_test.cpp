// experiments/bench/compare_rows_speed.sh: the rows of an ablation trained in turn, round by
// round, with each row's tokens/s ratio to the first row. Checked on two tiny rows and one round:
// the table has a line per row, the baseline's ratio is exactly 1, the other row's val loss is
// the one a plain `attnlab train` of that row and seed gives, and missing arguments print the
// usage with exit 2.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "tests/support/attnlab_command.h"

namespace fs = std::filesystem;

TEST(Experiments, CompareRowsSpeedInterleavesRowsAndReportsRatios) {
  const fs::path source(ATTNLAB_SOURCE_DIR);
  const fs::path work = fs::path(ATTNLAB_BINARY_DIR) / "test_train_tmp" / "compare_rows_speed";
  fs::remove_all(work);
  const std::string common =
      "model.d_model=32 model.n_layers=1 model.n_heads=2 trainer.max_steps=3 "
      "data.max_documents=5 trainer.eval_batches=1 trainer.threads=1";
  const std::string script = (source / "experiments/bench/compare_rows_speed.sh").string();
  const auto run = attnlab::testing::run_command(
      "ROUNDS=1 WORK='" + work.string() + "' ATTNLAB_BIN='" + std::string(ATTNLAB_BINARY_DIR) +
      "/attnlab' '" + script + "' '" + common + "' attention=mha attention=moh");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_TRUE(std::regex_search(
      run.output, std::regex(R"(\| attention=mha \| \d+ \| [0-9.]+ \| 1\.000 \| 1\.000 \|)")))
      << run.output;
  std::smatch moh;
  ASSERT_TRUE(std::regex_search(
      run.output, moh, std::regex(R"(\| attention=moh \| \d+ \| ([0-9.]+) \| [0-9.]+ \|)")))
      << run.output;
  // The row's run is an ordinary run of seed 1: its result.json holds the printed val loss.
  std::ifstream in(work / "round1_row1" / "result.json");
  const double val_loss = nlohmann::json::parse(in).at("val_loss").get<double>();
  EXPECT_NEAR(std::stod(moh[1]), val_loss, 1e-5);
  std::ifstream config(work / "round1_row1" / "config.yaml");
  const std::string text((std::istreambuf_iterator<char>(config)), {});
  EXPECT_NE(text.find("name: moh"), std::string::npos);
  EXPECT_NE(text.find("seed: 1"), std::string::npos);

  const auto usage = attnlab::testing::run_command("'" + script + "' only-one-arg");
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_NE(usage.output.find("interleaved"), std::string::npos) << usage.output;
  fs::remove_all(work);
}
