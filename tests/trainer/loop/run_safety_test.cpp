// Run-directory safety and signals, mostly through the real `attnlab` binary: a run directory
// held by another process is refused with the holder's PID; a `train` that fails validation
// (a changed model.d_model against the existing checkpoints, or model.n_heads, which changes no
// shape) fails with one line naming the setting and leaves config.yaml, overrides.yaml and
// command.txt untouched and eval working, as does an eval whose override changes the model; stale
// *.tmp files are removed at start; SIGHUP stops like SIGTERM, and a signal stop exits 130 (SIGINT)
// or 143 (SIGTERM, SIGHUP) after the checkpoint; eval and sample on a checkpoint with NaN weights
// fail with one clear line.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "config/config.h"
#include "config/run_directory.h"
#include "tests/support/attnlab_command.h"
#include "tests/support/mpi_launch.h"
#include "trainer/checkpoint.h"
#include "trainer/run_setup.h"
#include "trainer/train_loop.h"

using namespace attnlab;
using attnlab::test::CommandRun;
using attnlab::test::run_attnlab;
namespace fs = std::filesystem;

namespace {

const std::string kTiny =
    " model.d_model=32 model.n_layers=2 model.n_heads=2 model.max_seq_len=32 data.seq_len=32"
    " data.batch_size=4 data.max_documents=20 trainer.eval_batches=2 trainer.threads=1"
    " trainer.progress=none scheduler.warmup_steps=0";

std::string scratch(const std::string& name) {
  fs::path dir = fs::path(ATTNLAB_BINARY_DIR) / "test_train_tmp" / ("run_safety_" + name);
  fs::remove_all(dir);
  return dir.string();
}

// Lines of a command's output, not counting warnings.
size_t count_lines(const std::string& output) {
  std::istringstream in(output);
  size_t lines = 0;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line.rfind("warning:", 0) != 0) ++lines;
  return lines;
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

YAML::Node tiny_config(const std::string& run_dir, std::vector<std::string> extra = {}) {
  config::ComposeRequest request;
  request.config_dir = std::string(ATTNLAB_SOURCE_DIR) + "/configs";
  request.overrides = {"run.dir=" + run_dir,      "model.d_model=32",      "model.n_layers=2",
                       "model.n_heads=2",         "model.max_seq_len=32",  "data.seq_len=32",
                       "data.batch_size=4",       "data.max_documents=20", "trainer.max_steps=2",
                       "trainer.eval_batches=2",  "trainer.threads=1",     "trainer.progress=none",
                       "scheduler.warmup_steps=0"};
  request.overrides.insert(request.overrides.end(), extra.begin(), extra.end());
  return config::compose(request);
}

// `attnlab train` started in the background, its output in a file; a signal, then its status.
class BackgroundTrain {
 public:
  BackgroundTrain(const std::string& run_dir, const std::string& args) : log_(run_dir + ".log") {
    fs::create_directories(fs::path(run_dir).parent_path());
    const std::string binary = std::string(ATTNLAB_BINARY_DIR) + "/attnlab";
    const std::string command =
        "exec '" + binary + "' train run.dir='" + run_dir + "' " + args + " >'" + log_ + "' 2>&1";
    pid_ = fork();
    if (pid_ == 0) {
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~BackgroundTrain() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  // Waits (up to `limit`) until `file` exists and is not empty; false when the process ended.
  bool wait_for(const fs::path& file, std::chrono::seconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      std::error_code ec;
      if (fs::exists(file, ec) && fs::file_size(file, ec) > 0) return true;
      if (waitpid(pid_, &status_, WNOHANG) == pid_) {
        reaped_ = true;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  void signal(int number) { kill(pid_, number); }
  // The exit status, or -1 when it did not end within `limit` (then it is killed).
  int wait_exit(std::chrono::seconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!reaped_ && std::chrono::steady_clock::now() < end) {
      if (waitpid(pid_, &status_, WNOHANG) == pid_)
        reaped_ = true;
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!reaped_) return -1;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : 1000 + WTERMSIG(status_);
  }
  std::string output() const { return read(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
};

}  // namespace

TEST(RunDirectoryLock, ASecondLockNamesTheHolder) {
  const std::string dir = scratch("lock_in_process");
  config::RunDirectoryLock first(dir);
  try {
    config::RunDirectoryLock second(dir);
    FAIL() << "a second lock on one run directory was granted";
  } catch (const UserError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("pid " + std::to_string(getpid())), std::string::npos) << message;
    EXPECT_NE(message.find(dir), std::string::npos) << message;
  }
}

TEST(RunDirectoryLock, TrainRefusesADirectoryHeldByAnotherProcess) {
  const std::string dir = scratch("lock_cli");
  fs::create_directories(dir);
  // This test process plays the other trainer: it holds the lock and has its PID in the file.
  const int fd = ::open((fs::path(dir) / ".lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  const std::string pid = std::to_string(getpid()) + "\n";
  ASSERT_EQ(::write(fd, pid.data(), pid.size()), static_cast<ssize_t>(pid.size()));
  CommandRun run = run_attnlab("train run.dir=" + dir + " trainer.max_steps=2" + kTiny);
  ::close(fd);
  EXPECT_EQ(run.code, 2) << run.output;
  EXPECT_NE(run.output.find("in use by another attnlab process (pid " + std::to_string(getpid())),
            std::string::npos)
      << run.output;
  EXPECT_FALSE(fs::exists(fs::path(dir) / "config.yaml"));
  EXPECT_FALSE(fs::exists(fs::path(dir) / "checkpoints"));
}

TEST(RunDirectorySafety, AFailedRetrainLeavesTheRunUntouched) {
  const std::string dir = scratch("retrain");
  CommandRun first = run_attnlab("train run.dir=" + dir + " trainer.max_steps=2" + kTiny);
  ASSERT_EQ(first.code, 0) << first.output;
  const fs::path run(dir);
  const std::string config = read(run / "config.yaml"), overrides = read(run / "overrides.yaml"),
                    command = read(run / "command.txt"), git = read(run / "git.txt");
  ASSERT_FALSE(config.empty());

  // The existing checkpoints do not fit a d_model 64 model: an error, and nothing rewritten.
  CommandRun changed =
      run_attnlab("train run.dir=" + dir + " trainer.max_steps=4" + kTiny + " model.d_model=64");
  EXPECT_EQ(changed.code, 2) << changed.output;
  EXPECT_EQ(read(run / "config.yaml"), config);
  EXPECT_EQ(read(run / "overrides.yaml"), overrides);
  EXPECT_EQ(read(run / "command.txt"), command);
  EXPECT_EQ(read(run / "git.txt"), git);

  // One line, naming the changed setting, the way out and the report; no wrong init_strict hint.
  EXPECT_EQ(count_lines(changed.output), 1u) << changed.output;
  EXPECT_NE(changed.output.find("model.d_model: 32 -> 64"), std::string::npos) << changed.output;
  EXPECT_NE(changed.output.find("init_from=" + dir), std::string::npos) << changed.output;
  EXPECT_EQ(changed.output.find("init_strict"), std::string::npos) << changed.output;
  const std::string report = read(run / "weight_mismatch.txt");
  EXPECT_NE(changed.output.find((run / "weight_mismatch.txt").string()), std::string::npos);
  EXPECT_NE(report.find("model.d_model: 32 -> 64"), std::string::npos) << report;
  EXPECT_NE(report.find("blocks.1.mlp.fc_out.weight: weights [32, 128] vs model [64, 256]"),
            std::string::npos)
      << report;

  // Same shapes, another model: 4 heads of 8 instead of 2 of 16 would load silently; refused.
  CommandRun heads =
      run_attnlab("train run.dir=" + dir + " trainer.max_steps=4" + kTiny + " model.n_heads=4");
  EXPECT_EQ(heads.code, 2) << heads.output;
  EXPECT_EQ(count_lines(heads.output), 1u) << heads.output;
  EXPECT_NE(heads.output.find("model.n_heads: 2 -> 4"), std::string::npos) << heads.output;
  EXPECT_EQ(read(run / "config.yaml"), config);

  CommandRun eval = run_attnlab("eval run_dir=" + dir + " eval.batches=2");
  EXPECT_EQ(eval.code, 0) << eval.output;
  CommandRun sample = run_attnlab("sample run_dir=" + dir + " prompt=Call max_new_tokens=5");
  EXPECT_EQ(sample.code, 0) << sample.output;

  // eval with an override that changes the model: one line that says so, report in the run.
  CommandRun wrong_eval = run_attnlab("eval run_dir=" + dir + " eval.batches=2 model.d_model=64");
  EXPECT_EQ(wrong_eval.code, 2) << wrong_eval.output;
  EXPECT_EQ(count_lines(wrong_eval.output), 1u) << wrong_eval.output;
  EXPECT_NE(wrong_eval.output.find("model.d_model: 32 -> 64"), std::string::npos)
      << wrong_eval.output;
  EXPECT_NE(wrong_eval.output.find("drop the overrides"), std::string::npos) << wrong_eval.output;
  EXPECT_EQ(wrong_eval.output.find("init_strict"), std::string::npos) << wrong_eval.output;
}

TEST(RunDirectorySafety, StaleTemporaryFilesAreRemovedAtStart) {
  const std::string dir = scratch("stale_tmp");
  const fs::path run(dir);
  fs::create_directories(run / "checkpoints");
  std::ofstream(run / "result.json.tmp") << "{\"half\":";
  std::ofstream(run / "checkpoints" / "step_00000009.ckpt.tmp") << std::string(4096, 'x');
  TrainSummary summary = train(tiny_config(dir), {}, {"test"});
  EXPECT_EQ(summary.step, 2);
  EXPECT_FALSE(fs::exists(run / "result.json.tmp"));
  EXPECT_FALSE(fs::exists(run / "checkpoints" / "step_00000009.ckpt.tmp"));
  EXPECT_TRUE(fs::exists(run / "result.json"));
}

class SignalStop : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(SignalStop, CheckpointsAndExitsWithTheSignalCode) {
  const auto [signal_number, expected_code] = GetParam();
  const std::string dir = scratch("signal_" + std::to_string(signal_number));
  BackgroundTrain trainer(dir,
                          "trainer.max_steps=1000000 trainer.log_every=1 trainer.eval_every=0"
                          " trainer.checkpoint_every=0" +
                              kTiny);
  ASSERT_TRUE(trainer.wait_for(fs::path(dir) / "metrics.jsonl", std::chrono::seconds(180)))
      << trainer.output();
  trainer.signal(signal_number);
  const int code = trainer.wait_exit(std::chrono::seconds(120));
  EXPECT_EQ(code, expected_code) << trainer.output();
  EXPECT_NE(trainer.output().find("stopped at step"), std::string::npos) << trainer.output();
  ASSERT_TRUE(fs::exists(fs::path(dir) / "checkpoints" / "latest")) << trainer.output();
  EXPECT_GT(read_checkpoint_state(resolve_checkpoint(dir)).step, 0);
}

INSTANTIATE_TEST_SUITE_P(Signals, SignalStop,
                         ::testing::Values(std::make_pair(SIGINT, 130),
                                           std::make_pair(SIGTERM, 143),
                                           std::make_pair(SIGHUP, 143)),
                         [](const auto& info) {
                           return std::string(info.param.first == SIGINT    ? "SIGINT"
                                              : info.param.first == SIGTERM ? "SIGTERM"
                                                                            : "SIGHUP");
                         });

// A second Ctrl-C while the first waits for the step to end exits at once (130), without the
// checkpoint. Steps of a few seconds (a larger model on one thread) leave time for both signals.
TEST(SignalStopTwice, SecondSigintExitsAtOnce) {
  const std::string dir = scratch("signal_twice");
  BackgroundTrain trainer(dir,
                          "trainer.max_steps=1000000 trainer.log_every=1 trainer.eval_every=0"
                          " trainer.checkpoint_every=0 trainer.threads=1 trainer.progress=none"
                          " model.d_model=512 model.n_layers=4 model.n_heads=8"
                          " model.max_seq_len=256 data.seq_len=256 data.batch_size=16"
                          " data.max_documents=20 scheduler.warmup_steps=0");
  ASSERT_TRUE(trainer.wait_for(fs::path(dir) / "metrics.jsonl", std::chrono::seconds(300)))
      << trainer.output();
  trainer.signal(SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  trainer.signal(SIGINT);
  const int code = trainer.wait_exit(std::chrono::seconds(60));
  EXPECT_EQ(code, 130) << trainer.output();
  EXPECT_NE(trainer.output().find("second stop signal: exiting now"), std::string::npos)
      << trainer.output();
  EXPECT_EQ(trainer.output().find("stopped at step"), std::string::npos) << trainer.output();
}

TEST(NonFiniteWeights, EvalAndSampleFailWithOneClearLine) {
  const std::string dir = scratch("nan_weights");
  const YAML::Node config = tiny_config(dir);
  train(config, {}, {"test"});
  // A checkpoint as an older, unguarded version wrote it: every weight NaN, and it is best.ckpt.
  const std::string good = resolve_checkpoint(dir);
  const int64_t vocab = read_checkpoint_model_state(good).at("embed.weight").size(0);
  Gpt model = build_model(config, vocab);
  TrainState state;
  load_checkpoint(good, *model, nullptr, &state, /*restore_rng=*/false);
  {
    torch::NoGradGuard no_grad;
    for (auto& parameter : model->parameters()) parameter.fill_(NAN);
  }
  state.step += 1;
  SaveOptions options;
  options.is_best = true;
  options.check_finite = false;
  save_checkpoint(dir, *model, nullptr, state, read(fs::path(dir) / "config.yaml"), options);

  CommandRun eval = run_attnlab("eval run_dir=" + dir + " eval.batches=2");
  EXPECT_EQ(eval.code, 2) << eval.output;
  EXPECT_NE(eval.output.find("non-finite weights"), std::string::npos) << eval.output;
  EXPECT_EQ(eval.output.find("nan "), std::string::npos) << eval.output;
  CommandRun sample = run_attnlab("sample run_dir=" + dir + " prompt=Call max_new_tokens=5");
  EXPECT_EQ(sample.code, 2) << sample.output;
  EXPECT_NE(sample.output.find("non-finite weights"), std::string::npos) << sample.output;
}

TEST(RanksAgreeOnConfig, DifferentMaxStepsPerRankNameTheKey) {
  if (!attnlab::testing::mpirun_available()) GTEST_SKIP() << "mpirun is not installed";
  const std::string dir = scratch("mpi_config");
  const std::string binary = std::string(ATTNLAB_BINARY_DIR) + "/attnlab";
  const std::string args = " train run.dir=" + dir + " trainer.eval_every=0" + kTiny;
  // Two ranks from one mpirun (MPMD), each with its own trainer.max_steps.
  const auto result = attnlab::testing::run_command(
      attnlab::testing::mpirun_env() + "timeout 120 " + attnlab::testing::mpirun_prefix(1) +
      binary + args + " trainer.max_steps=3 : -np 1 " + binary + args + " trainer.max_steps=4");
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("config differs from rank 0's"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("trainer.max_steps (rank 0: 3, rank 1: 4)"), std::string::npos)
      << result.output;
  EXPECT_FALSE(fs::exists(fs::path(dir) / "config.yaml")) << result.output;
}
