// metrics.jsonl / metrics.csv content (growing header, resume truncation), progress output in
// plain/bar/none modes, command option parsing, MFU arithmetic, the plot command (its plotted
// series, not only that a PNG exists: loss terms, the modules' auxiliary losses, a classification
// run's accuracy and macro-F1) and the TensorBoard mirror, read back with the real `tensorboard`
// package.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "cli/command_options.h"
#include "common/error.h"
#include "tasks/classification/classification_metrics.h"
#include "tests/support/python.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/metrics_logger.h"
#include "trainer/mfu.h"
#include "trainer/progress.h"

namespace attnlab {
namespace {
using testing::project_python;
using testing::TempDir;

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Runs `command` and returns its stdout (exit status in *status).
std::string capture(const std::string& command, int* status) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return out;
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), pipe)) out += buffer;
  *status = pclose(pipe);
  return out;
}

// What TensorBoard reads back from <log_dir> (scripts/read_tensorboard.py's JSON).
nlohmann::json read_tensorboard(const std::string& log_dir) {
  int status = -1;
  const std::string out = capture("'" + project_python() + "' '" + testing::source_dir() +
                                      "/scripts/read_tensorboard.py' '" + log_dir + "'",
                                  &status);
  EXPECT_EQ(status, 0) << out;
  return nlohmann::json::parse(out);
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

// A resumed run printed MFU 115.5% against a peak measured while the machine was busy. The meter
// raises its peak to a faster step instead, says so once, and never reports a share above 1.
TEST(Mfu, NeverAboveOneAndSaysWhenThePeakWasRaised) {
  MatmulPeak peak;
  peak.n = 1024;
  peak.flops_per_s = 1e10;
  MfuMeter meter(peak, /*world_size=*/2);
  EXPECT_NE(meter.describe().find("float32 1024x1024 matmul peak measured at start: 10.0 GFLOP/s"),
            std::string::npos)
      << meter.describe();
  EXPECT_NE(meter.describe().find("x2 processes"), std::string::npos) << meter.describe();
  std::string note;
  EXPECT_DOUBLE_EQ(meter.share(1e6, 1e4, &note), 0.5);  // 1e10 of 2e10
  EXPECT_TRUE(note.empty());
  EXPECT_DOUBLE_EQ(meter.share(1e6, 4e4, &note), 1.0);  // 4e10: the peak was too low
  EXPECT_NE(note.find("above the"), std::string::npos) << note;
  note.clear();
  EXPECT_DOUBLE_EQ(meter.share(1e6, 2e4, &note), 0.5);  // against the best rate seen
  EXPECT_DOUBLE_EQ(meter.share(1e6, 5e4, &note), 1.0);
  EXPECT_TRUE(note.empty()) << "said once";
  MfuMeter unmeasured(MatmulPeak{}, 1);
  EXPECT_LT(unmeasured.share(1e6, 1e4, &note), 0.0);
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

// The trainer's own keys (train/loss, its terms, val/loss, lr) are what the picture shows.
TEST(PlotCommand, PlotsTheTrainersLossesTermsAndLr) {
  TempDir dir;
  setenv("ATTNLAB_SCRIPTS_DIR", (testing::source_dir() + "/scripts").c_str(), 1);
  {
    MetricsLogger logger(dir.str());
    for (int step = 10; step <= 40; step += 10)
      logger.log({{"step", step},
                  {"train/loss", 4.0 - step / 20.0},
                  {"train/loss/cross_entropy", 3.9 - step / 20.0},
                  {"train/loss/moh_balance", 0.01 * step},
                  {"lr", 1e-4 * step},
                  {"tokens_per_s", 1000.0}});
    logger.log({{"step", 20}, {"val/loss", 3.5}, {"val/perplexity", 33.1}});
    logger.log({{"step", 40}, {"val/loss", 2.5}, {"val/perplexity", 12.2}});
  }
  REQUIRE_PYTHON_WITH("matplotlib");
  const std::string series_path = dir / "series.json";
  ASSERT_EQ(
      testing::run_command_quietly("plot", {"run_dir=" + dir.str(), "series_json=" + series_path}),
      0);
  std::ifstream in(series_path);
  const nlohmann::json series = nlohmann::json::parse(in);
  ASSERT_TRUE(series.contains("train/loss")) << series.dump();
  ASSERT_EQ(series["train/loss"].size(), 4u);
  EXPECT_EQ(series["train/loss"][3][0], 40);
  EXPECT_DOUBLE_EQ(series["train/loss"][3][1].get<double>(), 2.0);
  ASSERT_EQ(series["val/loss"].size(), 2u);
  EXPECT_DOUBLE_EQ(series["val/loss"][0][1].get<double>(), 3.5);
  EXPECT_DOUBLE_EQ(series["train/loss/moh_balance"][1][1].get<double>(), 0.2);
  EXPECT_DOUBLE_EQ(series["train/loss/cross_entropy"][0][1].get<double>(), 3.4);
  EXPECT_DOUBLE_EQ(series["lr"][2][1].get<double>(), 3e-3);
  EXPECT_FALSE(series.contains("tokens_per_s"));  // not a loss, not the lr
  EXPECT_FALSE(series.contains("val/perplexity"));
}

// Every term the trainer logs is drawn: a module's auxiliary loss (train/aux/<name>, what
// LossSet logs for MoH's balance loss) and a classification run's evaluation metrics, logged
// under the keys the classification task writes (flat_metrics with "val/" at each evaluation,
// "test/" once at the end).
TEST(PlotCommand, PlotsAuxiliaryLossesAndClassificationMetrics) {
  TempDir dir;
  setenv("ATTNLAB_SCRIPTS_DIR", (testing::source_dir() + "/scripts").c_str(), 1);
  const std::vector<std::string> classes = {"ham", "spam"};
  {
    MetricsLogger logger(dir.str());
    for (int step = 10; step <= 40; step += 10)
      logger.log({{"step", step},
                  {"train/loss", 1.0 - step / 100.0},
                  {"train/loss/cross_entropy", 1.0 - step / 100.0 - 0.001 * step},
                  {"train/aux/moh_balance", 0.001 * step},
                  {"lr", 1e-3}});
    // Evaluations at steps 20 and 40: 3 of 4 right, then all 4.
    const std::vector<std::vector<int64_t>> predictions = {{0, 1, 1, 1}, {0, 0, 1, 1}};
    for (int eval = 0; eval < 2; ++eval) {
      nlohmann::json record = {{"step", 20 * (eval + 1)}, {"val/loss", 0.9 - 0.2 * eval}};
      const auto metrics = classification_metrics({0, 0, 1, 1}, predictions[eval], classes);
      for (const auto& [key, value] : flat_metrics(metrics, "val/")) record[key] = value;
      logger.log(record);
    }
    nlohmann::json final_record = {{"step", 40}, {"test/loss", 0.8}};
    const auto test = classification_metrics({0, 0, 1, 1}, {0, 1, 0, 1}, classes);
    for (const auto& [key, value] : flat_metrics(test, "test/")) final_record[key] = value;
    logger.log(final_record);
  }
  REQUIRE_PYTHON_WITH("matplotlib");
  const std::string series_path = dir / "series.json";
  ASSERT_EQ(
      testing::run_command_quietly("plot", {"run_dir=" + dir.str(), "series_json=" + series_path}),
      0);
  std::ifstream in(series_path);
  const nlohmann::json series = nlohmann::json::parse(in);
  ASSERT_TRUE(series.contains("train/aux/moh_balance")) << series.dump();
  ASSERT_EQ(series["train/aux/moh_balance"].size(), 4u);
  EXPECT_DOUBLE_EQ(series["train/aux/moh_balance"][3][1].get<double>(), 0.04);
  ASSERT_TRUE(series.contains("val/accuracy")) << series.dump();
  ASSERT_EQ(series["val/accuracy"].size(), 2u);
  EXPECT_EQ(series["val/accuracy"][0][0], 20);
  EXPECT_DOUBLE_EQ(series["val/accuracy"][0][1].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(series["val/accuracy"][1][1].get<double>(), 1.0);
  ASSERT_TRUE(series.contains("val/macro_f1")) << series.dump();
  // Step 20: ham F1 2/3 (precision 1, recall 1/2), spam F1 0.8 (2/3, 1) -> macro 11/15.
  EXPECT_NEAR(series["val/macro_f1"][0][1].get<double>(), 11.0 / 15.0, 1e-12);
  EXPECT_DOUBLE_EQ(series["val/macro_f1"][1][1].get<double>(), 1.0);
  ASSERT_TRUE(series.contains("test/accuracy")) << series.dump();
  EXPECT_EQ(series["test/accuracy"].size(), 1u);
  EXPECT_DOUBLE_EQ(series["test/accuracy"][0][1].get<double>(), 0.5);
  EXPECT_TRUE(series.contains("test/macro_f1"));
  EXPECT_FALSE(series.contains("val/precision/spam"));  // per class: classification_metrics.md
  EXPECT_EQ(series["val/loss"].size(), 2u);
  const std::string png = dir / "loss.png";
  EXPECT_GT(std::filesystem::file_size(png), 1000u);
}

// Every numeric value of metrics.jsonl is a TensorBoard scalar with the same step and value
// (float32), texts and hparams arrive, and a resume replaces what a crashed run logged past its
// checkpoint instead of doubling it.
TEST(TensorBoard, EventFilesEqualMetricsJsonlAndResumeReplacesTheTail) {
  REQUIRE_PYTHON_WITH("tensorboard");
  TempDir dir;
  {
    MetricsLogger logger(dir.str(), std::nullopt, /*tensorboard=*/true);
    logger.log_text("config", "model:\n  d_model: 64", 0);
    logger.log_text("sample", "caf\xc3", 0);  // a byte-level sample cut inside a character
    logger.log_hparams({{"optim.lr", 3e-4}, {"attention", "moh"}, {"model.tie", true}},
                       {"val/loss", "train/loss"});
    for (int step = 1; step <= 6; ++step)
      logger.log({{"step", step}, {"train/loss", 5.0 / step}, {"lr", 1e-3 * step}});
    logger.log({{"step", 4}, {"val/loss", 1.75}});
  }  // "crash" after step 6; the checkpoint is at step 4
  {
    MetricsLogger logger(dir.str(), /*resume_step=*/4, /*tensorboard=*/true);
    for (int step = 5; step <= 7; ++step)
      logger.log({{"step", step}, {"train/loss", 0.1 * step}, {"lr", 1e-3 * step}});
    logger.finish(true);
  }
  const nlohmann::json tb = read_tensorboard(tensorboard_dir(dir.str()));
  // metrics.jsonl after the resume: steps 1-4 of the first run, 5-7 of the second.
  std::map<std::string, std::map<int64_t, double>> expected;
  for (const std::string& line : lines_of(dir / "metrics.jsonl")) {
    const nlohmann::json record = nlohmann::json::parse(line);
    for (const auto& item : record.items())
      if (item.key() != "step")
        expected[item.key()][record["step"].get<int64_t>()] = item.value().get<double>();
  }
  ASSERT_EQ(expected["train/loss"].size(), 7u);
  for (const auto& [tag, points] : expected) {
    ASSERT_TRUE(tb["scalars"].contains(tag)) << tag << " missing in " << tb.dump();
    const auto& read = tb["scalars"][tag];
    ASSERT_EQ(read.size(), points.size()) << tag << ": " << read.dump();
    size_t i = 0;
    for (const auto& [step, value] : points) {
      EXPECT_EQ(read[i][0].get<int64_t>(), step) << tag;
      EXPECT_EQ(read[i][1].get<double>(), static_cast<double>(static_cast<float>(value)))
          << tag << " step " << step;
      ++i;
    }
  }
  EXPECT_NEAR(tb["scalars"]["train/loss"][6][1].get<double>(), 0.7, 1e-6);  // the resumed run's
  EXPECT_EQ(tb["texts"]["config"][0][1], "model:\n  d_model: 64");
  EXPECT_EQ(tb["texts"]["sample"][0][1], "caf\xef\xbf\xbd");  // U+FFFD, valid UTF-8
  EXPECT_DOUBLE_EQ(tb["hparams"]["optim.lr"].get<double>(), static_cast<double>(3e-4));
  EXPECT_EQ(tb["hparams"]["attention"], "moh");
  EXPECT_EQ(tb["hparams"]["model.tie"], true);
  EXPECT_EQ(tb["metric_tags"], nlohmann::json({"val/loss", "train/loss"}));
  // TensorBoard keeps a run's first hparams; the end status comes from the resumed run.
  EXPECT_EQ(tb["hparams_status"], "STATUS_SUCCESS");
}

}  // namespace
}  // namespace attnlab
