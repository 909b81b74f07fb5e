// The non-finite guard end to end (trainer.on_nonfinite = halt | skip | rollback): a diverging
// run (optim.lr=1e6, a checkpoint every step) never writes a checkpoint with a non-finite model
// or optimizer tensor under any policy; halt names the step, the tensor and the last good
// checkpoint; skip drops the batch and counts it; rollback reloads, lowers the LR, and a run
// halted after a rollback resumes and finishes with the lowered LR; an overflowing optimizer
// update (optim.lr=1e38 optim.grad_clip=0 optim.eps=0) is a clear error, not an abort.
#include "trainer/nonfinite_guard.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "config/config.h"
#include "trainer/checkpoint.h"
#include "trainer/optimizer.h"
#include "trainer/run_setup.h"
#include "trainer/train_loop.h"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

std::string scratch(const std::string& name) {
  fs::path dir = fs::path(ATTNLAB_BINARY_DIR) / "test_train_tmp" / ("nonfinite_" + name);
  fs::remove_all(dir);
  return dir.string();
}

// The recipe: a tiny model that optim.lr=1e6 makes diverge within a few steps.
YAML::Node diverging_config(const std::string& run_dir, std::vector<std::string> extra = {}) {
  config::ComposeRequest request;
  request.config_dir = std::string(ATTNLAB_SOURCE_DIR) + "/configs";
  request.overrides = {"run.dir=" + run_dir,         "model.d_model=64",
                       "model.n_layers=2",           "model.n_heads=2",
                       "model.max_seq_len=64",       "data.seq_len=64",
                       "data.batch_size=8",          "data.max_documents=20",
                       "trainer.threads=1",          "trainer.progress=none",
                       "scheduler.warmup_steps=0",   "trainer.max_steps=40",
                       "trainer.checkpoint_every=1", "trainer.eval_every=0",
                       "trainer.eval_batches=2",     "optim.lr=1e6"};
  request.overrides.insert(request.overrides.end(), extra.begin(), extra.end());
  return config::compose(request);
}

YAML::Node tiny_config(const std::string& run_dir, std::vector<std::string> extra = {}) {
  config::ComposeRequest request;
  request.config_dir = std::string(ATTNLAB_SOURCE_DIR) + "/configs";
  request.overrides = {"run.dir=" + run_dir,      "model.d_model=32",       "model.n_layers=2",
                       "model.n_heads=2",         "model.max_seq_len=32",   "data.seq_len=32",
                       "data.batch_size=4",       "data.max_documents=20",  "trainer.max_steps=10",
                       "trainer.eval_every=0",    "trainer.eval_batches=2", "trainer.threads=1",
                       "trainer.progress=none",   "trainer.log_every=1",    "scheduler=constant",
                       "scheduler.warmup_steps=0"};
  request.overrides.insert(request.overrides.end(), extra.begin(), extra.end());
  return config::compose(request);
}

// Every checkpoint file of the run (step files and best.ckpt) loaded into a fresh model and
// optimizer: the name of the first non-finite model or optimizer tensor, per file.
std::vector<std::string> nonfinite_checkpoints(const YAML::Node& config, const std::string& run_dir,
                                               int* files_checked) {
  std::vector<std::string> bad;
  *files_checked = 0;
  const fs::path dir = checkpoint_dir(run_dir);
  if (!fs::is_directory(dir)) return bad;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".ckpt") continue;
    const std::string file = entry.path().string();
    const int64_t vocab = read_checkpoint_model_state(file).at("embed.weight").size(0);
    Gpt model = build_model(config, vocab);
    OptimizerSetup optim = make_optimizer(*model, config);
    load_checkpoint(file, *model, optim.optimizer.get(), nullptr, /*restore_rng=*/false);
    NamedTensorList tensors = named_parameters_and_buffers(*model);
    NamedTensorList moments = named_optimizer_state(*model, *optim.optimizer);
    tensors.insert(tensors.end(), moments.begin(), moments.end());
    const std::string name = first_nonfinite(tensors);
    if (!name.empty()) bad.push_back(file + ": " + name);
    ++*files_checked;
  }
  return bad;
}

std::vector<nlohmann::json> metric_records(const std::string& run_dir) {
  std::vector<nlohmann::json> records;
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) records.push_back(nlohmann::json::parse(line));
  return records;
}

// One train/loss record per step 1..n, in order (a rollback must not leave duplicates).
std::vector<nlohmann::json> train_records(const std::string& run_dir) {
  std::vector<nlohmann::json> out;
  for (const auto& record : metric_records(run_dir))
    if (record.contains("train/loss")) out.push_back(record);
  return out;
}

}  // namespace

class DivergingRun : public ::testing::TestWithParam<std::string> {};

TEST_P(DivergingRun, NeverWritesANonFiniteCheckpoint) {
  const std::string policy = GetParam();
  const std::string run_dir = scratch("lr1e6_" + policy);
  const YAML::Node config = diverging_config(run_dir, {"trainer.on_nonfinite=" + policy});
  std::string message;
  try {
    train(config, {}, {"test"});
  } catch (const UserError& error) {
    message = error.what();
  }
  if (policy == "halt") {
    ASSERT_FALSE(message.empty()) << "optim.lr=1e6 was expected to diverge";
    EXPECT_NE(message.find("training diverged at step "), std::string::npos) << message;
    EXPECT_NE(message.find("last good checkpoint: "), std::string::npos) << message;
  }
  int checked = 0;
  const auto bad = nonfinite_checkpoints(config, run_dir, &checked);
  EXPECT_GT(checked, 0) << message;
  EXPECT_TRUE(bad.empty()) << ::testing::PrintToString(bad) << "\n" << message;
  // The run directory resumes: its newest checkpoint loads and is finite.
  if (checked > 0) EXPECT_NO_THROW(resolve_checkpoint(run_dir));
}

INSTANTIATE_TEST_SUITE_P(Policies, DivergingRun, ::testing::Values("halt", "skip", "rollback"));

TEST(NonFiniteGuard, HaltNamesTheStepTheGradientAndTheLastGoodCheckpoint) {
  const std::string run_dir = scratch("halt");
  const YAML::Node config =
      tiny_config(run_dir, {"trainer.checkpoint_every=2", "trainer.inject_nonfinite_at_step=5"});
  try {
    train(config, {}, {"test"});
    FAIL() << "a NaN gradient at step 5 must halt the run";
  } catch (const UserError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("at step 5"), std::string::npos) << message;
    EXPECT_NE(message.find("gradient of '"), std::string::npos) << message;
    EXPECT_NE(message.find("step_00000004.ckpt"), std::string::npos) << message;
  }
  EXPECT_FALSE(fs::exists(fs::path(checkpoint_dir(run_dir)) / "step_00000005.ckpt"));
  EXPECT_EQ(read_checkpoint_state(resolve_checkpoint(run_dir)).step, 4);
}

TEST(NonFiniteGuard, SkipDropsTheBatchAndCountsIt) {
  const std::string run_dir = scratch("skip");
  TrainSummary summary = train(
      tiny_config(run_dir, {"trainer.on_nonfinite=skip", "trainer.inject_nonfinite_at_step=3"}), {},
      {"test"});
  EXPECT_EQ(summary.step, 10);
  const auto records = train_records(run_dir);
  ASSERT_EQ(records.size(), 10u);
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i]["step"].get<int64_t>(), static_cast<int64_t>(i + 1));
    EXPECT_EQ(records[i].value("nonfinite/skipped_batches", 0.0), i + 1 >= 3 ? 1.0 : 0.0)
        << "step " << i + 1;
  }
}

TEST(NonFiniteGuard, RollbackLowersTheLrAndAResumedRunContinues) {
  const std::string run_dir = scratch("rollback");
  const std::vector<std::string> common = {"trainer.on_nonfinite=rollback",
                                           "trainer.rollback_lr_factor=0.25",
                                           "trainer.checkpoint_every=3"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.begin(), common.begin(), common.end());
    return tiny_config(run_dir, extra);
  };
  // Steps 1-4 train, step 5's gradient is NaN: back to step 3's checkpoint, LR x0.25, the data
  // since skipped; then stop at step 7 as if interrupted.
  TrainSummary first =
      train(with({"trainer.inject_nonfinite_at_step=5", "trainer.halt_at_step=7"}), {}, {"test"});
  EXPECT_TRUE(first.interrupted);
  EXPECT_EQ(first.step, 7);
  // Resume (no injection) to the end: the lowered LR and the rollback count carry over.
  TrainSummary second = train(with({}), {}, {"test"});
  EXPECT_FALSE(second.interrupted);
  EXPECT_EQ(second.step, 10);

  const auto records = train_records(run_dir);
  ASSERT_EQ(records.size(), 10u);  // step 4, logged before the rollback too, once
  const double lr = records[0]["lr"].get<double>();
  for (size_t i = 0; i < records.size(); ++i) {
    const int64_t step = records[i]["step"].get<int64_t>();
    EXPECT_EQ(step, static_cast<int64_t>(i + 1));
    const bool after = step >= 4;  // step 4 is re-run after rolling back to step 3
    EXPECT_DOUBLE_EQ(records[i]["lr"].get<double>(), after ? lr * 0.25 : lr) << "step " << step;
    EXPECT_EQ(records[i].value("nonfinite/rollbacks", 0.0), after ? 1.0 : 0.0) << "step " << step;
    EXPECT_TRUE(std::isfinite(records[i]["train/loss"].get<double>())) << "step " << step;
  }
  int checked = 0;
  EXPECT_TRUE(nonfinite_checkpoints(with({}), run_dir, &checked).empty());
  EXPECT_GT(checked, 0);
  EXPECT_TRUE(fs::exists(fs::path(run_dir) / "result.json"));
}

TEST(NonFiniteGuard, RollbackGivesUpAfterMaxRollbacks) {
  const std::string run_dir = scratch("rollback_limit");
  EXPECT_THROW(
      train(tiny_config(run_dir, {"trainer.on_nonfinite=rollback", "trainer.max_rollbacks=0",
                                  "trainer.inject_nonfinite_at_step=2"}),
            {}, {"test"}),
      UserError);
}

TEST(NonFiniteGuard, AnOverflowingUpdateIsAClearErrorNotAnAbort) {
  const std::string run_dir = scratch("lr1e38");
  const YAML::Node config = diverging_config(
      run_dir, {"optim.lr=1e38", "optim.grad_clip=0", "optim.eps=0", "trainer.max_steps=3"});
  try {
    train(config, {}, {"test"});
    FAIL() << "optim.lr=1e38 must stop the run";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find("training diverged at step 1"), std::string::npos)
        << error.what();
  }
  int checked = 0;
  EXPECT_TRUE(nonfinite_checkpoints(config, run_dir, &checked).empty());
}

TEST(NonFiniteGuard, BadOptionValuesNameTheKey) {
  const std::string run_dir = scratch("options");
  for (const auto& [override_text, key] : std::vector<std::pair<std::string, std::string>>{
           {"trainer.on_nonfinite=ignore", "trainer.on_nonfinite"},
           {"trainer.rollback_lr_factor=2", "trainer.rollback_lr_factor"},
           {"trainer.spike_window=1", "trainer.spike_window"},
           {"trainer.grad_accum_steps=0", "trainer.grad_accum_steps"}}) {
    try {
      train(tiny_config(run_dir, {override_text}), {}, {"test"});
      ADD_FAILURE() << override_text << " was accepted";
    } catch (const UserError& error) {
      EXPECT_NE(std::string(error.what()).find(key), std::string::npos) << error.what();
    }
    // Rejected before anything was written: the run directory was not even created.
    EXPECT_FALSE(fs::exists(run_dir)) << override_text;
  }
}
