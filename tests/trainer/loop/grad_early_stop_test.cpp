// GradES (trainer/grad_early_stop.h): the freezing rule on hand-set gradients (grace period,
// patience, a reset by one large gradient, only trainable 2-D matches monitored), and in real
// training: frozen matrices stop changing while the rest trains on, and an interrupted run
// resumed mid-grace freezes at the same step and ends bitwise equal to an uninterrupted one.
#include "trainer/grad_early_stop.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "config/config.h"
#include "tests/support/train_runs.h"
#include "trainer/checkpoint.h"
#include "trainer/train_loop.h"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

YAML::Node grades_config(double tau, double grace, int64_t patience) {
  YAML::Node config;
  config["trainer"]["grades"]["enabled"] = true;
  config["trainer"]["grades"]["tau"] = tau;
  config["trainer"]["grades"]["grace_fraction"] = grace;
  config["trainer"]["grades"]["patience"] = patience;
  return config;
}

std::string scratch(const std::string& name) {
  return attnlab::testing::scratch_run_dir("grades_" + name);
}

YAML::Node tiny_config(const std::string& run_dir, std::vector<std::string> extra = {}) {
  return attnlab::testing::compose_shipped(
      {"run.dir=" + run_dir,       "model.d_model=32",
       "model.n_layers=2",         "model.n_heads=2",
       "model.max_seq_len=32",     "data.seq_len=32",
       "data.batch_size=4",        "data.max_documents=20",
       "trainer.max_steps=12",     "trainer.eval_every=6",
       "trainer.eval_batches=2",   "trainer.checkpoint_every=4",
       "trainer.keep_last=0",      "trainer.threads=1",
       "trainer.progress=none",    "trainer.log_every=1",
       "scheduler.warmup_steps=3", "trainer.grades.enabled=true",
       "trainer.grades.tau=1.0e9", "trainer.grades.grace_fraction=0.5",
       "trainer.grades.patience=3"},
      extra);
}

}  // namespace

TEST(GradEarlyStop, FreezesAfterGraceAndPatienceOnlyWhatConverged) {
  auto small = torch::zeros({3, 4}, torch::requires_grad());
  auto large = torch::zeros({3, 4}, torch::requires_grad());
  auto flaky = torch::zeros({3, 4}, torch::requires_grad());
  auto vector = torch::zeros({4}, torch::requires_grad());  // 1-D: not a matrix
  auto fixed = torch::zeros({3, 4});                        // not trainable (freeze=)
  const std::vector<std::pair<std::string, torch::Tensor>> params = {
      {"blocks.0.attn.q_proj.weight", small},
      {"blocks.0.mlp.fc_in.weight", large},
      {"blocks.1.attn.k_proj.weight", flaky},
      {"blocks.0.attn_norm.weight", vector},
      {"blocks.1.mlp.fc_out.weight", fixed},
      {"embed.weight", torch::zeros({5, 4}, torch::requires_grad())}};
  GradEarlyStop grades(GradEarlyStopOptions::from_config(grades_config(1e-3, 0.5, 2)), params,
                       /*max_steps=*/10);
  EXPECT_EQ(grades.monitored_count(), 3u);
  for (int64_t step = 1; step <= 10; ++step) {
    small.mutable_grad() = torch::full({3, 4}, 1e-4);
    large.mutable_grad() = torch::full({3, 4}, 1e-1);
    // Below tau except at step 6: the count restarts, so it freezes only after 7 and 8.
    flaky.mutable_grad() = torch::full({3, 4}, step == 6 ? 1.0 : 1e-5);
    const auto frozen_now = grades.observe(step);
    if (step <= 5) EXPECT_TRUE(frozen_now.empty()) << "frozen during the grace period";
    if (step == 6) EXPECT_EQ(frozen_now, std::vector<std::string>{"blocks.0.attn.q_proj.weight"});
    if (step == 8) EXPECT_EQ(frozen_now, std::vector<std::string>{"blocks.1.attn.k_proj.weight"});
    // A frozen matrix loses its gradient (AdamW then skips it); the others keep theirs.
    if (step >= 6) EXPECT_FALSE(small.grad().defined()) << step;
    EXPECT_TRUE(large.grad().defined());
  }
  EXPECT_EQ(grades.frozen(), (std::map<std::string, int64_t>{{"blocks.0.attn.q_proj.weight", 6},
                                                             {"blocks.1.attn.k_proj.weight", 8}}));
  std::map<std::string, std::string> extra;
  grades.save(extra);
  GradEarlyStop restored(GradEarlyStopOptions::from_config(grades_config(1e-3, 0.5, 2)), params,
                         10);
  restored.load(extra);
  EXPECT_EQ(restored.frozen(), grades.frozen());

  // In a single process a frozen matrix also stops requiring a gradient (backward skips its
  // weight gradient); restoring a state where it is not frozen (a rollback) turns it back on.
  GradEarlyStop single(GradEarlyStopOptions::from_config(grades_config(1e-3, 0.0, 1)), params, 10,
                       /*skip_backward=*/true);
  small.mutable_grad() = torch::full({3, 4}, 1e-4);
  EXPECT_EQ(single.observe(1), std::vector<std::string>{"blocks.0.attn.q_proj.weight"});
  EXPECT_FALSE(small.requires_grad());
  single.load({});
  EXPECT_TRUE(small.requires_grad());
  single.load(extra);
  EXPECT_FALSE(small.requires_grad());
  small.requires_grad_(true);

  EXPECT_THROW(GradEarlyStopOptions::from_config(grades_config(-1, 0.5, 2)), UserError);
  EXPECT_THROW(GradEarlyStopOptions::from_config(grades_config(1e-3, 1.5, 2)), UserError);
  EXPECT_THROW(GradEarlyStopOptions::from_config(grades_config(1e-3, 0.5, 0)), UserError);
}

TEST(GradEarlyStop, FrozenMatricesStopChangingAndResumeIsBitwise) {
  // tau = 1e9: every block matrix is "converged"; grace 6 steps, patience 3 -> all freeze at 7.
  const std::string straight = scratch("straight"), resumed = scratch("resumed");
  const TrainSummary a = train(tiny_config(straight), {}, {"test"});
  ASSERT_EQ(a.step, 12);
  const auto at8 = read_checkpoint_model_state(straight + "/checkpoints/step_00000008.ckpt");
  const auto at12 = read_checkpoint_model_state(straight + "/checkpoints/step_00000012.ckpt");
  const auto at4 = read_checkpoint_model_state(straight + "/checkpoints/step_00000004.ckpt");
  size_t frozen = 0;
  for (const auto& [name, tensor] : at12) {
    const bool block_matrix = name.rfind("blocks.", 0) == 0 && tensor.dim() == 2;
    if (block_matrix) {
      ++frozen;
      EXPECT_TRUE(torch::equal(tensor, at8.at(name))) << name << " changed after freezing";
      EXPECT_FALSE(torch::equal(tensor, at4.at(name))) << name << " never trained";
    } else if (name == "embed.weight" || name == "final_norm.weight") {
      EXPECT_FALSE(torch::equal(tensor, at8.at(name))) << name << " stopped training";
    }
  }
  EXPECT_GT(frozen, 4u);
  // metrics.jsonl: nothing frozen before step 7, all of them from step 7 on.
  std::ifstream in(straight + "/metrics.jsonl");
  std::map<int64_t, double> frozen_at;
  for (std::string line; std::getline(in, line);) {
    const auto record = nlohmann::json::parse(line);
    if (record.contains("grades/frozen"))
      frozen_at[record["step"].get<int64_t>()] = record["grades/frozen"].get<double>();
  }
  EXPECT_EQ(frozen_at.at(6), 0.0);
  EXPECT_EQ(frozen_at.at(7), static_cast<double>(frozen));
  EXPECT_EQ(frozen_at.at(12), static_cast<double>(frozen));

  // Halted at step 5 (inside the grace period, the below-tau counters at 5) and resumed: the
  // counters come back from the checkpoint, so everything freezes at step 7 again.
  const TrainSummary first = train(tiny_config(resumed, {"trainer.halt_at_step=5"}), {}, {"test"});
  ASSERT_EQ(first.step, 5);
  const TrainSummary second = train(tiny_config(resumed), {}, {"test"});
  ASSERT_EQ(second.step, 12);
  const auto end_b = read_checkpoint_model_state(resumed + "/checkpoints/step_00000012.ckpt");
  for (const auto& [name, tensor] : at12) EXPECT_TRUE(torch::equal(tensor, end_b.at(name))) << name;
  EXPECT_EQ(a.val_loss, second.val_loss);
}
