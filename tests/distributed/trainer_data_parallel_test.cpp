// The whole trainer under real `mpirun` (issue #7): a tiny GPT on a Moby Dick slice (dropout 0,
// one thread per rank) trained by `mpirun -np 2 attnlab train` with per-rank batch b reaches the
// parameters of `attnlab train` with batch 2b after 20 steps (relative 1e-5; optim=muon within
// its bfloat16 Newton-Schulz's reach), and a 2-rank run halted at step 8 and resumed ends bitwise
// equal to the uninterrupted 2-rank run over dist.backend=gloo (a 2-rank sum is a + b on either
// backend). All compare the runs' final checkpoints and metrics.jsonl. A 2-rank masked-diffusion
// run (per-rank noise generators) also resumes bitwise, and GradES freezes the same matrices at the
// same step. When `mpirun` is killed with SIGKILL, the ranks stop within a fraction of a second and
// write nothing more into the run directory. The classification task, in the same loop, matches
// likewise.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/mpi_launch.h"
#include "tests/support/run_metrics.h"
#include "trainer/checkpoint.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

constexpr int kSteps = 20;
constexpr int kPerRankBatch = 4;

const std::string kAttnlab = std::string(ATTNLAB_BINARY_DIR) + "/attnlab";

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::path(ATTNLAB_BINARY_DIR) / "test_distributed_tmp" / name;
  fs::remove_all(dir);
  fs::create_directories(dir.parent_path());
  return dir;
}

std::string overrides(const fs::path& run_dir, int batch, const std::string& extra = "",
                      int steps = kSteps) {
  return "run.dir=" + run_dir.string() +
         " model.d_model=32 model.n_layers=2 model.n_heads=2 model.max_seq_len=32"
         " model.dropout=0.0 data.seq_len=32 data.max_documents=20 data.batch_size=" +
         std::to_string(batch) + " trainer.max_steps=" + std::to_string(steps) +
         " trainer.eval_every=0 trainer.eval_batches=2 trainer.checkpoint_every=0"
         " trainer.log_every=1 trainer.threads=1 trainer.progress=none"
         " scheduler.warmup_steps=3 optim.lr=0.003 " +
         extra;
}

// `attnlab train` on `ranks` processes (1: no mpirun). Output on failure goes into the message.
testing::CommandResult train(int ranks, const std::string& args) {
  std::string command = "OMP_WAIT_POLICY=passive " + testing::mpirun_env();
  if (ranks > 1) command += "timeout 120 " + testing::mpirun_prefix(ranks);
  return testing::run_command(command + kAttnlab + " train " + args);
}

using testing::train_losses;

StateDict final_params(const fs::path& run_dir) {
  return read_checkpoint_model_state(resolve_checkpoint(run_dir.string()));
}

// ||a - b|| / ||b|| over all parameters together.
double relative_difference(const StateDict& a, const StateDict& b) {
  double diff = 0.0, norm = 0.0;
  for (const auto& [name, tensor] : b) {
    diff += (a.at(name) - tensor).pow(2).sum().item<double>();
    norm += tensor.pow(2).sum().item<double>();
  }
  return std::sqrt(diff / norm);
}

class TrainerDataParallel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::mpirun_available()) GTEST_SKIP() << "mpirun not installed";
    ASSERT_TRUE(fs::exists(kAttnlab)) << kAttnlab << " not built";
  }
};

TEST_F(TrainerDataParallel, TwoRanksMatchOneProcessWithDoubleBatch) {
  const fs::path two = scratch("ddp_two_ranks"), one = scratch("ddp_one_process"),
                 half = scratch("ddp_half_batch");
  auto run = train(2, overrides(two, kPerRankBatch));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = train(1, overrides(one, 2 * kPerRankBatch));
  ASSERT_EQ(run.exit_code, 0) << run.output;

  // 2 ranks x b == 1 process x 2b: parameters and the (rank-averaged) logged losses.
  const StateDict params_two = final_params(two), params_one = final_params(one);
  ASSERT_EQ(params_two.size(), params_one.size());
  const double relative = relative_difference(params_two, params_one);
  EXPECT_LT(relative, 1e-5);
  const auto losses_two = train_losses(two), losses_one = train_losses(one);
  ASSERT_EQ(losses_two.size(), static_cast<size_t>(kSteps));
  ASSERT_EQ(losses_one.size(), static_cast<size_t>(kSteps));
  for (int i = 0; i < kSteps; ++i)
    EXPECT_NEAR(losses_two[i], losses_one[i], 1e-5 * losses_one[i]) << "step " << i + 1;
  std::cerr << "[ddp equivalence] relative parameter difference " << relative << "\n";

  // Control: with other data (one process, batch b) the parameters differ by far more than the
  // tolerance, so the check above can tell batches apart.
  run = train(1, overrides(half, kPerRankBatch));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_GT(relative_difference(final_params(half), params_one), 1e-3);
  for (const auto& dir : {two, one, half}) fs::remove_all(dir);
}

// optim=muon updates from the all-reduced gradient like every optimizer, so 2 ranks x b train
// like 1 process x 2b under Muon too. The two gradients differ by float rounding (about 1e-7),
// and Muon's Newton-Schulz runs in bfloat16 (as torch.optim.Muon's does): a rounding-level change
// of its input flips some bfloat16 roundings, so the runs drift apart by far more than under
// AdamW, yet stay much closer than a run on other data (the control).
TEST_F(TrainerDataParallel, MuonTwoRanksMatchOneProcessWithDoubleBatch) {
  const fs::path two = scratch("ddp_muon_two_ranks"), one = scratch("ddp_muon_one_process"),
                 half = scratch("ddp_muon_half_batch");
  auto muon = [](std::string args) {
    const std::string adamw_lr = "optim.lr=0.003 ";
    return args.replace(args.find(adamw_lr), adamw_lr.size(),
                        "optim=muon optim.muon.lr=0.01 optim.adamw.lr=0.003 ");
  };
  auto run = train(2, muon(overrides(two, kPerRankBatch)));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = train(1, muon(overrides(one, 2 * kPerRankBatch)));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = train(1, muon(overrides(half, kPerRankBatch)));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const StateDict params_one = final_params(one);
  const double relative = relative_difference(final_params(two), params_one);
  const double control = relative_difference(final_params(half), params_one);
  std::cerr << "[ddp equivalence, muon] relative parameter difference " << relative
            << "; other data: " << control << "\n";
  // Measured: 3e-3 against 9e-2 for the control; the losses agree to about 2e-5.
  EXPECT_LT(relative, 1e-2);
  EXPECT_GT(control, 10 * relative);
  const auto losses_two = train_losses(two), losses_one = train_losses(one);
  ASSERT_EQ(losses_two.size(), static_cast<size_t>(kSteps));
  ASSERT_EQ(losses_one.size(), static_cast<size_t>(kSteps));
  for (int i = 0; i < kSteps; ++i)
    EXPECT_NEAR(losses_two[i], losses_one[i], 1e-4 * losses_one[i]) << "step " << i + 1;
  for (const auto& dir : {two, one, half}) fs::remove_all(dir);
}

// The classification task trains in the same loop, so it is data parallel too: each rank takes
// its slice of the global batch (ExampleSampler), and 2 ranks x b reach the parameters and
// losses of 1 process x 2b. Batches are padded to their longest member, so the two runs'
// attention differs in padded length only (masked), and the tolerance is the LM test's.
TEST_F(TrainerDataParallel, ClassificationTwoRanksMatchOneProcessWithDoubleBatch) {
  const fs::path two = scratch("ddp_classification_two"), one = scratch("ddp_classification_one");
  auto args = [](const fs::path& dir, int batch) {
    return "run.dir=" + dir.string() +
           " task=classification loss=focal_auto data.max_per_class=20 data.seq_len=32"
           " model.d_model=32 model.n_layers=2 model.n_heads=2 model.dropout=0.0"
           " data.batch_size=" +
           std::to_string(batch) +
           " trainer.max_steps=8 trainer.eval_every=0 trainer.log_every=1 trainer.threads=1"
           " trainer.progress=none scheduler.warmup_steps=2 optim.lr=0.003"
           " task.eval_batch_size=16";
  };
  auto run = train(2, args(two, kPerRankBatch));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = train(1, args(one, 2 * kPerRankBatch));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const StateDict params_two = final_params(two), params_one = final_params(one);
  ASSERT_EQ(params_two.size(), params_one.size());
  ASSERT_TRUE(params_one.count("classifier.weight"));
  const double relative = relative_difference(params_two, params_one);
  EXPECT_LT(relative, 1e-5);
  const auto losses_two = train_losses(two), losses_one = train_losses(one);
  ASSERT_EQ(losses_two.size(), 8u);
  ASSERT_EQ(losses_one.size(), 8u);
  for (int i = 0; i < 8; ++i)
    EXPECT_NEAR(losses_two[i], losses_one[i], 1e-5 * losses_one[i]) << "step " << i + 1;
  EXPECT_TRUE(fs::exists(two / "classification_metrics.json"));
  std::cerr << "[ddp classification] relative parameter difference " << relative << "\n";
  for (const auto& dir : {two, one}) fs::remove_all(dir);
}

// GradES decides on the all-reduced gradients, so 2 ranks freeze the same matrices at the same
// step as one process with the double batch (which also skips their weight gradients in backward,
// while the ranks only drop them), and the runs still agree.
TEST_F(TrainerDataParallel, GradEarlyStopFreezesTheSameUnderTwoRanks) {
  const fs::path two = scratch("ddp_grades_two"), one = scratch("ddp_grades_one");
  const std::string grades =
      "trainer.grades.enabled=true trainer.grades.tau=1.0e9 trainer.grades.grace_fraction=0.5 "
      "trainer.grades.patience=2";
  auto run = train(2, overrides(two, kPerRankBatch, grades));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string two_output = run.output;
  run = train(1, overrides(one, 2 * kPerRankBatch, grades));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // Grace: 10 steps; patience 2 -> every block matrix freezes at step 11, in both.
  EXPECT_NE(two_output.find("GradES: step 11 froze 12 matrices (12/12 frozen)"), std::string::npos)
      << two_output;
  EXPECT_NE(run.output.find("GradES: step 11 froze 12 matrices (12/12 frozen)"), std::string::npos)
      << run.output;
  EXPECT_LT(relative_difference(final_params(two), final_params(one)), 1e-5);
  for (const auto& dir : {two, one}) fs::remove_all(dir);
}

// The uninterrupted reference runs over gloo, the interrupted one over MPI: a 2-rank sum is a + b
// on either backend and resume is exact, so the two must agree bitwise (a mismatch names which
// property broke only together with the other tests, but costs one run less).
TEST_F(TrainerDataParallel, HaltedTwoRankRunResumesBitwiseAndGlooEqualsMpi) {
  const fs::path gloo = scratch("ddp_gloo"), resumed = scratch("ddp_resumed");
  auto run = train(2, overrides(gloo, kPerRankBatch, "dist.backend=gloo"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // 2 ranks (MPI) halted after step 8 (checkpoint on stop), then resumed.
  run = train(2, overrides(resumed, kPerRankBatch, "trainer.halt_at_step=8"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("stopped at step 8"), std::string::npos) << run.output;
  run = train(2, overrides(resumed, kPerRankBatch));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("at step 8"), std::string::npos) << "did not resume:\n" << run.output;

  const auto expected = train_losses(gloo), losses_resumed = train_losses(resumed);
  ASSERT_EQ(expected.size(), static_cast<size_t>(kSteps));
  ASSERT_EQ(losses_resumed.size(), static_cast<size_t>(kSteps));
  for (int i = 0; i < kSteps; ++i) EXPECT_EQ(losses_resumed[i], expected[i]) << "step " << i + 1;
  const StateDict params_gloo = final_params(gloo), params_resumed = final_params(resumed);
  for (const auto& [name, tensor] : params_gloo)
    EXPECT_TRUE(torch::equal(params_resumed.at(name), tensor)) << name;
  for (const auto& dir : {gloo, resumed}) fs::remove_all(dir);
}

// Masked diffusion draws its noise from a per-rank generator: a resumed rank must continue its own
// stream (not rank 0's), or the resumed 2-rank run drifts from the uninterrupted one.
TEST_F(TrainerDataParallel, TwoRankDiffusionRunResumesBitwise) {
  const fs::path straight = scratch("ddp_dlm_straight"), resumed = scratch("ddp_dlm_resumed");
  const std::string dlm = "objective=masked_diffusion";
  auto run = train(2, overrides(straight, kPerRankBatch, dlm, 12));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = train(2, overrides(resumed, kPerRankBatch, dlm + " trainer.halt_at_step=5", 12));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = train(2, overrides(resumed, kPerRankBatch, dlm, 12));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("at step 5"), std::string::npos) << "did not resume:\n" << run.output;
  const auto expected = train_losses(straight);
  ASSERT_EQ(expected.size(), 12u);
  EXPECT_EQ(train_losses(resumed), expected);
  const StateDict params_straight = final_params(straight), params_resumed = final_params(resumed);
  for (const auto& [name, tensor] : params_straight)
    EXPECT_TRUE(torch::equal(params_resumed.at(name), tensor)) << name;
  for (const auto& dir : {straight, resumed}) fs::remove_all(dir);
}

// Every path under `dir` with its size: what the run directory holds at one moment.
std::map<std::string, uintmax_t> snapshot(const fs::path& dir) {
  std::map<std::string, uintmax_t> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) files[entry.path().string()] = entry.file_size();
  return files;
}

// Processes whose command line mentions `needle` (the run directory: the ranks and mpirun).
int processes_mentioning(const std::string& needle) {
  // "[/]tmp/..." matches the path but not the shell that runs pgrep with this pattern.
  const std::string pattern = "[" + needle.substr(0, 1) + "]" + needle.substr(1);
  const auto result = testing::run_command("pgrep -f -c -- '" + pattern + "'");
  return std::atoi(result.output.c_str());
}

TEST_F(TrainerDataParallel, RanksStopWithoutWritingWhenTheLauncherIsKilled) {
  const fs::path run = scratch("launcher_killed");
  // Whatever happens below, no process of this run outlives the test.
  struct KillLeftovers {
    std::string run;
    ~KillLeftovers() {
      testing::run_command("pkill -9 -f -- '[" + run.substr(0, 1) + "]" + run.substr(1) + "'");
    }
  } leftovers{run.string()};
  // A run that checkpoints every step and prints nothing while it trains (no progress, no spike
  // warnings), in the background; its PID is mpirun's. It would end by itself after 20000 steps.
  const std::string command =
      "OMP_WAIT_POLICY=passive " + testing::mpirun_env() + testing::mpirun_prefix(2) + kAttnlab +
      " train " +
      overrides(run, kPerRankBatch, "trainer.checkpoint_every=1 trainer.spike_window=0", 20000) +
      " > " + (run.string() + ".log") + " 2>&1 & echo $!";
  fs::create_directories(run.parent_path());
  const auto started = testing::run_command(command);
  const pid_t mpirun = std::atoi(started.output.c_str());
  ASSERT_GT(mpirun, 0) << started.output;
  // Wait (at most 120 s) until training is under way: the newest checkpoint past step 3
  // (keep_last=2 deletes the older ones).
  auto newest_step = [&]() -> int64_t {
    std::error_code error;
    if (!fs::exists(run / "checkpoints", error)) return 0;
    const auto files = list_checkpoints(run.string());
    if (files.empty()) return 0;
    const std::string name = fs::path(files.front()).filename().string();  // step_XXXXXXXX.ckpt
    return std::atoll(name.substr(5, 8).c_str());
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline && newest_step() < 3)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_GE(newest_step(), 3) << "training did not start; log: "
                              << testing::run_command("tail -5 " + run.string() + ".log").output;
  ASSERT_EQ(kill(mpirun, SIGKILL), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the watchdog polls every 0.1 s
  const auto after_kill = snapshot(run);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(processes_mentioning(run.string()), 0)
      << "ranks still running after their launcher died";
  EXPECT_EQ(snapshot(run), after_kill) << "the run directory changed after the launcher died";
  // (The ranks' own line about the dead launcher went to mpirun, which is gone: nothing to read.
  // The run prints nothing while it trains, so no rank was stopped by a broken output pipe.)
}

}  // namespace
}  // namespace attnlab
