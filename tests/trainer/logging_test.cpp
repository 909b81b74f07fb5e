// metrics.jsonl / metrics.csv content (growing header, resume truncation), progress output in
// plain/bar/none modes, command option parsing, MFU arithmetic and the plot command.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "tests/support/python.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/cli/command.h"
#include "trainer/cli/command_options.h"
#include "trainer/metrics_logger.h"
#include "trainer/mfu.h"
#include "trainer/progress.h"

namespace attnlab {
namespace {
using testing::TempDir;

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(MetricsLogger, JsonlAndCsvWithGrowingHeader) {
  TempDir dir;
  {
    MetricsLogger logger(dir.str());
    logger.log({{"step", 1}, {"train_loss", 2.5}, {"lr", 0.001}});
    logger.log({{"step", 2}, {"train_loss", 2.25}, {"lr", 0.002}});
    logger.log({{"step", 2}, {"val_loss", 3.0}, {"note", "a,b"}});
  }
  auto jsonl = lines_of(dir / "metrics.jsonl");
  ASSERT_EQ(jsonl.size(), 3u);
  EXPECT_EQ(nlohmann::json::parse(jsonl[1])["train_loss"], 2.25);
  EXPECT_EQ(nlohmann::json::parse(jsonl[2])["val_loss"], 3.0);
  auto csv = lines_of(dir / "metrics.csv");
  ASSERT_EQ(csv.size(), 4u);
  EXPECT_EQ(csv[0], "step,lr,train_loss,note,val_loss");
  EXPECT_EQ(csv[1], "1,0.001,2.5,,");
  EXPECT_EQ(csv[2], "2,0.002,2.25,,");
  EXPECT_EQ(csv[3], "2,,,\"a,b\",3.0");
}

TEST(MetricsLogger, ResumeDropsRecordsAfterResumedStep) {
  TempDir dir;
  {
    MetricsLogger logger(dir.str());
    for (int step = 1; step <= 6; ++step) logger.log({{"step", step}, {"train_loss", 10 - step}});
  }
  {
    std::ofstream(dir / "metrics.jsonl", std::ios::app) << "{\"step\": 7, \"train_lo";  // crash
    MetricsLogger logger(dir.str(), /*resume_step=*/4);
    EXPECT_EQ(logger.records().size(), 4u);
    logger.log({{"step", 5}, {"train_loss", 0.5}});
  }
  auto jsonl = lines_of(dir / "metrics.jsonl");
  ASSERT_EQ(jsonl.size(), 5u);
  EXPECT_EQ(nlohmann::json::parse(jsonl[3])["step"], 4);
  EXPECT_EQ(nlohmann::json::parse(jsonl[4])["train_loss"], 0.5);
  auto csv = lines_of(dir / "metrics.csv");
  ASSERT_EQ(csv.size(), 6u);
  EXPECT_EQ(csv[0], "step,train_loss");
  EXPECT_EQ(csv[5], "5,0.5");
  EXPECT_THROW(MetricsLogger(dir.str()).log({{"loss", 1.0}}), UserError);  // no step
  EXPECT_GT(peak_rss_mib(), 1.0);
}

TEST(Progress, PlainModeLogsEveryNSteps) {
  std::ostringstream out;
  Progress progress("plain", 20, 5, &out);
  for (int step = 1; step <= 20; ++step) progress.update({step, 1.0 / step, 3e-4, 2500.0, 0.123});
  progress.message("eval: val_loss 1.0");
  progress.finish();
  std::vector<std::string> lines;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(
      lines[0].rfind("step 5/20 | loss 0.2000 | lr 3.00e-04 | 2.5k tok/s | MFU 12.3% | ETA ", 0),
      0u)
      << lines[0];
  EXPECT_EQ(lines[3].rfind("step 20/20 | loss 0.0500", 0), 0u) << lines[3];
  EXPECT_NE(lines[3].find("ETA 0s"), std::string::npos) << lines[3];
  EXPECT_EQ(lines[4], "eval: val_loss 1.0");
  EXPECT_EQ(out.str().find('\r'), std::string::npos);
}

TEST(Progress, BarNoneAndBadMode) {
  std::ostringstream bar_out, none_out;
  Progress bar("bar", 3, 1, &bar_out);
  bar.update({3, 0.5, 1e-3, 10.0, -1.0});
  bar.finish();
  EXPECT_EQ(bar_out.str().rfind("\rstep 3/3 | loss 0.5000", 0), 0u);
  EXPECT_EQ(bar_out.str().find("MFU"), std::string::npos);  // unknown MFU not shown
  Progress none("none", 3, 1, &none_out);
  none.update({1, 0.5, 1e-3, 10.0, 0.1});
  none.message("x");
  EXPECT_TRUE(none_out.str().empty());
  EXPECT_THROW(Progress("fancy", 3, 1), UserError);
  EXPECT_EQ(Progress::format_duration(65), "1m05s");
  EXPECT_EQ(Progress::format_duration(7260), "2h01m");
}

TEST(CommandOptions, ParsesAndRejects) {
  CommandOptions options("export", {"run_dir=runs/a=b", "out="}, {"run_dir", "out"});
  EXPECT_EQ(options.get("run_dir"), "runs/a=b");
  EXPECT_EQ(options.get("out"), "");
  EXPECT_EQ(options.get_or("missing", "dflt"), "dflt");
  try {
    CommandOptions("export", {"rundir=x"}, {"run_dir", "out"});
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("accepted keys: run_dir, out"), std::string::npos);
  }
  EXPECT_THROW(CommandOptions("plot", {"run_dir"}, {"run_dir"}), UserError);
  EXPECT_THROW(CommandOptions("plot", {"run_dir=a", "run_dir=b"}, {"run_dir"}), UserError);
  EXPECT_THROW(CommandOptions("plot", {}, {"run_dir"}).get("run_dir"), UserError);
}

TEST(Mfu, MeasuredPeakAndRatio) {
  MatmulPeak peak = measure_matmul_peak(torch::Device(torch::kCPU), 256, 3, 0.5);
  EXPECT_GT(peak.flops_per_s, 1e8);  // any CPU does > 0.1 GFLOP/s
  EXPECT_GE(peak.repeats, 1);
  EXPECT_DOUBLE_EQ(compute_mfu(6e6, 1000.0, 1.2e10), 0.5);
  EXPECT_LT(compute_mfu(1.0, 1.0, 0.0), 0.0);
}

TEST(PlotCommand, WritesPngOrExplainsWhyNot) {
  TempDir dir;
  // The test binary may live outside the repository: point the command at scripts/.
  setenv("ATTNLAB_SCRIPTS_DIR", (testing::source_dir() + "/scripts").c_str(), 1);
  const std::string run_dir = "run_dir=" + dir.str();
  EXPECT_THROW(testing::run_command_quietly("plot", {run_dir}), UserError);  // no metrics yet
  {
    MetricsLogger logger(dir.str());
    for (int step = 1; step <= 5; ++step)
      logger.log({{"step", step}, {"train_loss", 5.0 / step}, {"lr", 1e-3}});
    logger.log({{"step", 5}, {"val_loss", 1.5}});
  }
  REQUIRE_PYTHON_WITH("matplotlib");
  EXPECT_EQ(testing::run_command_quietly("plot", {run_dir}), 0);
  std::ifstream png(dir / "loss.png", std::ios::binary);
  char magic[4] = {};
  png.read(magic, 4);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
  EXPECT_THROW(testing::run_command_quietly("plot", {run_dir, "python=/nonexistent/python3"}),
               UserError);
}

}  // namespace
}  // namespace attnlab
