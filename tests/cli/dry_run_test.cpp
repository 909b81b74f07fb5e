// `attnlab train --dry-run` says what `attnlab train` with the same arguments then does, case by
// case on one tiny run directory: a new run, a finished run (prints its result), a finished run
// with trainer.max_steps raised (resumes and trains on), a run stopped early (resumes), a changed
// model (the same error, exit 2), run.resume=must without a checkpoint (the same error) and
// run.resume=never (starts over). Each dry run is held side by side with the real command.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "common/subprocess.h"
#include "tests/support/attnlab_command.h"
#include "tests/support/python.h"

namespace fs = std::filesystem;

namespace {

using attnlab::test::CommandRun;
using attnlab::test::run_attnlab;

const std::string kTiny =
    " model.d_model=32 model.n_layers=2 model.n_heads=2 data.seq_len=32 data.batch_size=4"
    " data.max_documents=20 trainer.eval_batches=2 trainer.eval_every=4 trainer.threads=1"
    " trainer.progress=none scheduler.warmup_steps=2";

// The dry run's verdict line.
std::string verdict(const CommandRun& run) {
  const size_t at = run.output.find("dry run: would train in");
  return at == std::string::npos ? "" : run.output.substr(at, run.output.find('\n', at) - at);
}

std::string first_error(const std::string& output) {
  const size_t at = output.find("error:");
  return at == std::string::npos ? "" : output.substr(at, output.find('\n', at) - at);
}

std::string without_report(std::string line) {
  const size_t at = line.find(" (full report:");
  return at == std::string::npos ? line : line.substr(0, at);
}

TEST(DryRun, PredictsWhatTheRealCommandDoes) {
  const fs::path root = fs::path(ATTNLAB_BINARY_DIR) / "test_train_tmp" / "dry_run";
  fs::remove_all(root);
  const std::string dir = (root / "run").string();
  const std::string args = "train run.dir=" + dir + kTiny;

  // A new run.
  CommandRun dry = run_attnlab(args + " trainer.max_steps=4 --dry-run");
  ASSERT_EQ(dry.code, 0) << dry.output;
  EXPECT_NE(verdict(dry).find("(a new run)"), std::string::npos) << verdict(dry);
  EXPECT_FALSE(fs::exists(dir));
  CommandRun real = run_attnlab(args + " trainer.max_steps=4");
  ASSERT_EQ(real.code, 0) << real.output;
  EXPECT_NE(real.output.find("(a new run)"), std::string::npos) << real.output;

  // The same command again: a finished run prints its result and trains nothing.
  dry = run_attnlab(args + " trainer.max_steps=4 --dry-run");
  ASSERT_EQ(dry.code, 0) << dry.output;
  EXPECT_NE(verdict(dry).find("a finished run at step 4: it would print its result"),
            std::string::npos)
      << verdict(dry);
  real = run_attnlab(args + " trainer.max_steps=4");
  ASSERT_EQ(real.code, 0) << real.output;
  EXPECT_NE(real.output.find("this run had finished"), std::string::npos) << real.output;

  // max_steps raised on the finished run: it resumes at step 4 and trains on to 8.
  dry = run_attnlab(args + " trainer.max_steps=8 --dry-run");
  ASSERT_EQ(dry.code, 0) << dry.output;
  EXPECT_NE(verdict(dry).find("at step 4 and train to step 8"), std::string::npos) << verdict(dry);
  real = run_attnlab(args + " trainer.max_steps=8");
  ASSERT_EQ(real.code, 0) << real.output;
  EXPECT_NE(real.output.find("resuming at step 4"), std::string::npos) << real.output;
  EXPECT_NE(real.output.find("final: step 8"), std::string::npos) << real.output;
  // ... and said first what the learning rate does on the new steps.
  EXPECT_NE(real.output.find("finished its warmup_cosine schedule at step 4 and now trains to "
                             "step 8: scheduler.extend=recompute"),
            std::string::npos)
      << real.output;

  // Another model: the dry run fails with the real command's error and exit code.
  dry = run_attnlab(args + " trainer.max_steps=12 model.d_model=48 --dry-run");
  real = run_attnlab(args + " trainer.max_steps=12 model.d_model=48");
  EXPECT_EQ(dry.code, 2) << dry.output;
  EXPECT_EQ(real.code, 2) << real.output;
  EXPECT_NE(first_error(dry.output).find("was made with another model"), std::string::npos)
      << dry.output;
  EXPECT_EQ(without_report(first_error(dry.output)), without_report(first_error(real.output)));

  // The 8-step run finished too; trained on to 10 with scheduler.extend=hold, the learning rate
  // stays at the rate the run finished with (warmup_cosine's floor: min_lr_ratio x optim.lr).
  real = run_attnlab(
      args + " trainer.max_steps=10 scheduler.extend=hold trainer.log_every=1 optim.lr=0.002");
  ASSERT_EQ(real.code, 0) << real.output;
  EXPECT_NE(real.output.find("scheduler.extend=hold"), std::string::npos) << real.output;
  std::ifstream metrics(fs::path(dir) / "metrics.jsonl");
  std::map<int64_t, double> lr;
  for (std::string line; std::getline(metrics, line);) {
    const nlohmann::json row = nlohmann::json::parse(line);
    if (row.contains("lr")) lr[row["step"].get<int64_t>()] = row["lr"].get<double>();
  }
  ASSERT_EQ(lr.count(9) + lr.count(10), 2u);
  EXPECT_DOUBLE_EQ(lr[9], lr[10]);
  EXPECT_NEAR(lr[9], 0.1 * 0.002, 1e-12);

  // run.resume=must in an empty directory: the same refusal.
  const std::string empty_args =
      "train run.dir=" + (root / "empty").string() + kTiny + " trainer.max_steps=4 run.resume=must";
  dry = run_attnlab(empty_args + " --dry-run");
  real = run_attnlab(empty_args);
  EXPECT_EQ(dry.code, 2) << dry.output;
  EXPECT_EQ(real.code, 2) << real.output;
  EXPECT_NE(first_error(dry.output).find("run.resume=must"), std::string::npos) << dry.output;
  EXPECT_EQ(first_error(dry.output), first_error(real.output));

  // run.resume=never on the existing run: a new run in the same directory.
  dry = run_attnlab(args + " trainer.max_steps=4 run.resume=never --dry-run");
  ASSERT_EQ(dry.code, 0) << dry.output;
  EXPECT_NE(verdict(dry).find("it would start a new run there"), std::string::npos) << verdict(dry);
  real = run_attnlab(args + " trainer.max_steps=4 run.resume=never");
  ASSERT_EQ(real.code, 0) << real.output;
  EXPECT_NE(real.output.find("(a new run)"), std::string::npos) << real.output;
  fs::remove_all(root);
}

// A run halted at step 2 and resumed to completion is one TensorBoard HParams session that ends
// in success: the halted part ends no session (it used to end it as failed, and TensorBoard kept
// that status).
TEST(DryRun, AHaltedAndResumedRunEndsItsHParamsSessionInSuccess) {
  REQUIRE_PYTHON_WITH("tensorboard");
  const fs::path root = fs::path(ATTNLAB_BINARY_DIR) / "test_train_tmp" / "hparams_status";
  fs::remove_all(root);
  const std::string args = "train run.dir=" + (root / "run").string() + kTiny +
                           " trainer.max_steps=4 trainer.checkpoint_every=2";
  CommandRun halted = run_attnlab(args + " trainer.halt_at_step=2");
  EXPECT_NE(halted.output.find("stopped at step 2"), std::string::npos) << halted.output;
  CommandRun resumed = run_attnlab(args);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  const auto tb = attnlab::testing::run_command(
      "'" + attnlab::project_python() + "' '" + std::string(ATTNLAB_SOURCE_DIR) +
      "/scripts/read_tensorboard.py' '" + (root / "run" / "tensorboard").string() + "'");
  ASSERT_EQ(tb.exit_code, 0) << tb.output;
  EXPECT_NE(tb.output.find("\"hparams_status\": \"STATUS_SUCCESS\""), std::string::npos)
      << tb.output;
  fs::remove_all(root);
}

}  // namespace
