// CI coverage of scripts/gpu_check.sh, the GPU-path check (issue #14): its --cpu mode runs every
// step of the GPU check (device parity tests, a training run whose loss falls, bitwise resume,
// the speed report) on the CPU against this build with small sizes, and must report every check
// passed in <out>/gpu_check.json; bad input is one error line and exit code 2. No GPU needed.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/attnlab_command.h"

namespace fs = std::filesystem;
using attnlab::testing::run_command;

namespace {

const std::string kScript = std::string(ATTNLAB_SOURCE_DIR) + "/scripts/gpu_check.sh";

std::string fresh_dir(const std::string& name) {
  const fs::path dir = fs::path(ATTNLAB_BINARY_DIR) / "test_gpu_check_tmp" / name;
  fs::remove_all(dir);
  return dir.string();
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST(GpuCheckScript, CpuModePassesEveryCheck) {
  const std::string out = fresh_dir("cpu");
  const auto run = run_command(kScript + " --cpu --build " + ATTNLAB_BINARY_DIR + " --out " + out);
  // The exit code first, then the report, so that a failing check shows its own error.
  EXPECT_EQ(run.exit_code, 0) << run.output;
  const fs::path json_path = fs::path(out) / "gpu_check.json";
  ASSERT_TRUE(fs::exists(json_path)) << run.output;
  const auto report = nlohmann::json::parse(read_file(json_path));
  EXPECT_EQ(report.at("mode"), "cpu");
  EXPECT_TRUE(report.at("passed").get<bool>()) << report.dump(2);
  const std::vector<std::string> names = {"parity_tests", "train_loss_falls", "bitwise_resume",
                                          "speed_report"};
  ASSERT_EQ(report.at("checks").size(), names.size()) << report.dump(2);
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& check = report.at("checks").at(i);
    EXPECT_EQ(check.at("name"), names[i]);
    EXPECT_TRUE(check.at("passed").get<bool>()) << check.dump(2);
  }
  const auto& train = report.at("checks").at(1);
  EXPECT_LT(train.at("final_loss").get<double>(), train.at("first_loss").get<double>());
  const auto& speed = report.at("checks").at(3);
  EXPECT_EQ(speed.at("rows").size(), 5u) << speed.dump(2);
  for (const auto& row : speed.at("rows")) EXPECT_GT(row.at("tokens_per_s").get<double>(), 0.0);
  const std::string markdown = read_file(fs::path(out) / "gpu_check.md");
  EXPECT_NE(markdown.find("| check | result |"), std::string::npos) << markdown;
  EXPECT_NE(markdown.find("tokens/s"), std::string::npos) << markdown;
  EXPECT_NE(run.output.find(json_path.string()), std::string::npos) << run.output;
}

TEST(GpuCheckScript, BadInputIsOneErrorLineAndExitCode2) {
  const auto unknown = run_command(kScript + " --bogus");
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  EXPECT_NE(unknown.output.find("error: unknown option '--bogus'"), std::string::npos)
      << unknown.output;
  EXPECT_EQ(std::count(unknown.output.begin(), unknown.output.end(), '\n'), 1) << unknown.output;
  // GPU mode with a deps folder that does not exist: refused before anything is built.
  const auto no_deps =
      run_command(kScript + " --deps " + fresh_dir("no_deps") + " --out " + fresh_dir("gpu_out"));
  EXPECT_EQ(no_deps.exit_code, 2) << no_deps.output;
  EXPECT_EQ(no_deps.output.rfind("error: ", 0), 0u) << no_deps.output;
  EXPECT_EQ(std::count(no_deps.output.begin(), no_deps.output.end(), '\n'), 1) << no_deps.output;
}
