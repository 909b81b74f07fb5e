// End-to-end tests against a real one-node Slurm cluster started by scripts/slurm_local.sh:
// a 2-task MPI job launched by `srun --mpi=pmix` (this binary's SlurmWorker test, which checks
// rank/world size, an all-reduce and a broadcast through DistributedContext), and a 3-task job
// array with a parallelism cap whose tasks write results that `summarize` aggregates.
// A pre-empted training job: `attnlab submit` of a tiny GPT, USR1 sent to the job's steps
// mid-run (what `--signal=USR1@120` does before the time limit) makes the trainer checkpoint and
// `scontrol requeue` itself; the requeued job resumes from the same run dir and ends with the
// final loss of an uninterrupted run, bitwise.
// The cluster is started for the suite and stopped afterwards unless it was already running.
// Needs root; set ATTNLAB_SKIP_SLURM_TESTS=1 to skip on machines that must not run daemons.
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "distributed/distributed.h"
#include "launch/local_sweep.h"
#include "launch/slurm_script.h"
#include "launch/sweep_summary.h"
#include "tests/support/fake_job.h"
#include "tests/support/mpi_launch.h"
#include "tests/support/run_metrics.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

const std::string kScript = std::string(ATTNLAB_SOURCE_DIR) + "/scripts/slurm_local.sh";
const std::string kSlurmConf = "/var/tmp/attnlab-slurm/slurm.conf";

// ---- worker side: started by srun inside the 2-task job ----

TEST(SlurmWorker, Mpi) {
  const char* out = std::getenv("ATTNLAB_SLURM_WORKER_OUT");
  if (out == nullptr) GTEST_SKIP() << "worker test; started by srun in LocalCluster tests";
  auto context = init_distributed(YAML::Load("dist: {backend: mpi, timeout_s: 60}"));
  const double sum = context->allreduce_sum(context->rank() + 1.0);
  const std::string word = context->broadcast_string(context->is_main() ? "from-rank-0" : "");
  std::ofstream(fs::path(out) / ("rank" + std::to_string(context->rank()) + ".txt"))
      << context->world_size() << " " << sum << " " << word << " " << std::getenv("SLURM_JOB_ID")
      << "\n";
}

// ---- parent side ----

class LocalCluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::getenv("ATTNLAB_SKIP_SLURM_TESTS") != nullptr || geteuid() != 0) return;
    was_running_ = testing::run_command(kScript + " status").exit_code == 0;
    auto start = testing::run_command(kScript + " start");
    started_ = start.exit_code == 0;
    start_output_ = start.output;
    setenv("SLURM_CONF", kSlurmConf.c_str(), 1);
  }
  static void TearDownTestSuite() {
    if (started_ && !was_running_) testing::run_command(kScript + " stop");
  }
  void SetUp() override {
    if (std::getenv("ATTNLAB_SKIP_SLURM_TESTS") != nullptr) GTEST_SKIP() << "disabled by env";
    if (geteuid() != 0) GTEST_SKIP() << "the local cluster needs root";
    ASSERT_TRUE(started_) << "scripts/slurm_local.sh start failed:\n" << start_output_;
    dir_ = fs::temp_directory_path() /
           ("attnlab_slurm_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Waits until `job_id` (and all its array tasks) left the queue; false after `seconds`.
  static bool wait_for_job(const std::string& job_id, int seconds) {
    for (int i = 0; i < seconds * 2; ++i) {
      auto queue = testing::run_command("squeue -h -j " + job_id + " -o %i 2>/dev/null");
      if (queue.exit_code == 0 && queue.output.find_first_not_of(" \n") == std::string::npos)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    return false;
  }

  static std::string read_file(const fs::path& path) {
    std::ifstream file(path);
    return std::string(std::istreambuf_iterator<char>(file), {});
  }

  fs::path dir_;
  static inline bool started_ = false, was_running_ = false;
  static inline std::string start_output_;
};

TEST_F(LocalCluster, TwoTaskMpiJobUnderSrun) {
  SlurmOptions options;
  options.job_name("attnlab-mpi-test").tasks_per_node(2).time("00:05:00");
  options.setup({"export ATTNLAB_SLURM_WORKER_OUT=" + shell_quote(dir_.string())});
  SlurmJobSpec spec;
  spec.workdir = dir_.string();
  spec.output = (dir_ / "slurm-%j.out").string();
  spec.program = {testing::self_executable(), "--gtest_filter=SlurmWorker.Mpi"};
  const fs::path script = dir_ / "submit.sbatch";
  std::ofstream(script) << render_sbatch_script(options, spec);

  const std::string job_id = submit_sbatch(options, script.string());
  ASSERT_TRUE(wait_for_job(job_id, 180)) << "job " << job_id << " still queued after 180 s";
  const std::string log = read_file(dir_ / ("slurm-" + job_id + ".out"));
  for (int rank = 0; rank < 2; ++rank) {
    const std::string result = read_file(dir_ / ("rank" + std::to_string(rank) + ".txt"));
    // world size 2, sum of rank+1 = 3, rank 0's string, this job's id.
    EXPECT_EQ(result, "2 3 from-rank-0 " + job_id + "\n") << "rank " << rank << "\n" << log;
  }
  EXPECT_NE(log.find("[attnlab] job " + job_id), std::string::npos) << log;
}

TEST_F(LocalCluster, JobArrayRunsEveryTaskAndSummarizes) {
  const fs::path fake_job = dir_ / "fake_job.sh";
  std::ofstream(fake_job) << testing::kFakeJob;
  fs::permissions(fake_job, fs::perms::owner_all);
  const fs::path sweep = dir_ / "sweep";
  const std::vector<config::SweepJob> jobs = {
      {0, {"lr=0.1", "seed=1"}}, {1, {"lr=0.1", "seed=3"}}, {2, {"lr=0.2", "seed=1"}}};

  SlurmOptions options;
  options.job_name("attnlab-array-test").array_parallelism(2).time("00:05:00").mpi("none");
  SlurmJobSpec spec;
  spec.workdir = dir_.string();
  spec.output = sweep.string() + "/%a/slurm-%A_%a.out";
  spec.program = {"/bin/bash", fake_job.string()};
  for (const auto& job : jobs) {
    fs::create_directories(sweep / std::to_string(job.index));
    auto args = job.overrides;
    args.push_back("run.dir=" + (sweep / std::to_string(job.index)).string());
    spec.array_arguments.push_back(args);
  }
  write_multirun_yaml(sweep.string(), jobs, {"attnlab", "submit", "-m"}, "slurm");
  const std::string script_text = render_sbatch_script(options, spec);
  EXPECT_NE(script_text.find("#SBATCH --array=0-2%2"), std::string::npos);
  std::ofstream(sweep / "submit.sbatch") << script_text;

  const std::string job_id = submit_sbatch(options, (sweep / "submit.sbatch").string());
  ASSERT_TRUE(wait_for_job(job_id, 180)) << "array " << job_id << " still queued after 180 s";
  for (const auto& job : jobs) {
    const fs::path job_dir = sweep / std::to_string(job.index);
    EXPECT_TRUE(job_completed(job_dir.string())) << job_dir;
    const std::string log =
        read_file(job_dir / ("slurm-" + job_id + "_" + std::to_string(job.index) + ".out"));
    EXPECT_NE(log.find("(array task " + std::to_string(job.index) + ")"), std::string::npos) << log;
  }
  // val_loss = 10*lr + seed: lr=0.1 -> {2, 4}: mean 3, std sqrt(2); lr=0.2 -> {3}.
  SweepSummary summary = summarize_sweep(sweep.string(), false);
  ASSERT_EQ(summary.rows.size(), 2u);
  EXPECT_NEAR(summary.rows[0].mean.at("val_loss"), 3.0, 1e-9);
  EXPECT_NEAR(summary.rows[0].stddev.at("val_loss"), std::sqrt(2.0), 1e-9);
  EXPECT_NEAR(summary.rows[1].mean.at("val_loss"), 3.0, 1e-9);
  // The cap: no more than 2 array tasks ran at once.
  std::ifstream concurrency(sweep / "concurrency");
  int most = 0;
  for (std::string line; std::getline(concurrency, line);) most = std::max(most, std::stoi(line));
  EXPECT_GE(most, 1);
  EXPECT_LE(most, 2);
}

// ---- pre-emption: USR1 -> checkpoint -> scontrol requeue -> resume ----

const std::string kAttnlab = std::string(ATTNLAB_BINARY_DIR) + "/attnlab";

// Steps of a few ms each: long enough to be signalled mid-run even on a loaded machine (200 steps,
// about a second, were sometimes over before the signal arrived under `ctest -j2`), short enough
// for a unit test.
constexpr int kTinyRunSteps = 800;

std::string tiny_run_overrides(const fs::path& run_dir) {
  return "run.dir=" + run_dir.string() +
         " model.d_model=32 model.n_layers=2 model.n_heads=2 model.max_seq_len=32"
         " model.dropout=0.0 data.seq_len=32 data.batch_size=8 data.max_documents=20"
         " trainer.max_steps=" +
         std::to_string(kTinyRunSteps) +
         " trainer.eval_every=0 trainer.eval_batches=2"
         " trainer.checkpoint_every=0 trainer.log_every=1 trainer.threads=1"
         " trainer.progress=none scheduler.warmup_steps=3";
}

using testing::metric_records;
using testing::train_losses;

// `scontrol show job` field, e.g. "Restarts" or "JobState"; empty when the job is unknown.
std::string job_field(const std::string& job_id, const std::string& field) {
  auto shown = testing::run_command("scontrol show job " + job_id + " 2>/dev/null");
  std::smatch match;
  if (std::regex_search(shown.output, match, std::regex("\\b" + field + "=(\\S+)")))
    return match[1];
  return "";
}

TEST_F(LocalCluster, PreemptedTrainingRequeuesAndResumes) {
  ASSERT_TRUE(fs::exists(kAttnlab)) << kAttnlab << " not built";
  // The reference: the same training, uninterrupted, outside Slurm, with the OMP_NUM_THREADS=1
  // the sbatch script exports (OpenBLAS's thread count changes float summation order).
  const fs::path reference = dir_ / "reference", job_dir = dir_ / "job";
  auto straight = testing::run_command("OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive " + kAttnlab +
                                       " train " + tiny_run_overrides(reference));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;

  auto submitted =
      testing::run_command("cd " + shell_quote(dir_.string()) + " && " + kAttnlab + " submit " +
                           tiny_run_overrides(job_dir) +
                           " launcher.tasks_per_node=1 launcher.mpi=none launcher.time=00:05:00");
  ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
  std::smatch submitted_id;
  ASSERT_TRUE(std::regex_search(submitted.output, submitted_id, std::regex("submitted job (\\d+)")))
      << submitted.output;
  const std::string job_id = submitted_id[1];
  struct CancelOnExit {  // never leave a job behind, whatever fails below
    std::string id;
    ~CancelOnExit() { testing::run_command("scancel " + id + " 2>/dev/null"); }
  } cancel{job_id};

  // Signal as soon as training runs (the trainer's handler is installed before step 1): what
  // --signal=USR1@120 does, sent to the job's steps, not to the batch shell.
  bool running = false;
  for (int i = 0; i < 1200 && !running; ++i) {  // 120 s: the job may wait for the scheduler
    running = !metric_records(job_dir).empty();
    if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(running) << "job " << job_id << " never started training; state "
                       << job_field(job_id, "JobState") << "\n"
                       << read_file(job_dir / ("slurm-" + job_id + ".out"));
  ASSERT_EQ(testing::run_command("scancel --signal=USR1 " + job_id).exit_code, 0);

  // The job comes back (Restarts=1) and finishes. slurmctld makes a requeued job eligible only
  // 120 s later (EligibleTime); the test moves that to now instead of waiting.
  // While a requeue completes, the old run's end shows for a while (e.g. FAILED, Restarts=0; over
  // 15 s on a loaded 2-core machine): an end state only counts once the job restarted, or after
  // it lasted 60 s.
  std::string state, restarts;
  bool released = false;
  int ended_polls = 0;
  for (int i = 0; i < 480; ++i) {  // 240 s
    state = job_field(job_id, "JobState");
    restarts = job_field(job_id, "Restarts");
    const bool ended = state == "COMPLETED" || state == "FAILED" || state == "CANCELLED";
    ended_polls = ended ? ended_polls + 1 : 0;
    if (ended && (restarts != "0" || ended_polls > 120)) break;
    if (state == "PENDING" && restarts == "1" && !released)
      released =
          testing::run_command("scontrol update JobId=" + job_id + " StartTime=now").exit_code == 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  const std::string log = read_file(job_dir / ("slurm-" + job_id + ".out"));
  ASSERT_EQ(state, "COMPLETED") << log;
  EXPECT_EQ(restarts, "1") << log;
  EXPECT_NE(log.find("pre-empted at step"), std::string::npos) << log;
  EXPECT_NE(log.find(", restart 1"), std::string::npos) << log;
  std::smatch resumed_at;
  ASSERT_TRUE(std::regex_search(log, resumed_at, std::regex("resumed from \\S+ at step (\\d+)")))
      << log;
  const int step = std::stoi(resumed_at[1]);
  EXPECT_GT(step, 0);
  EXPECT_LT(step, kTinyRunSteps) << "the signal came after training ended: nothing was pre-empted";

  // Same run dir, same result as the uninterrupted run: every logged loss, bitwise.
  ASSERT_TRUE(fs::exists(job_dir / "result.json")) << log;
  const auto expected_losses = train_losses(reference);
  ASSERT_EQ(expected_losses.size(), static_cast<size_t>(kTinyRunSteps));
  EXPECT_EQ(train_losses(job_dir), expected_losses);
  const auto expected_result = nlohmann::json::parse(read_file(reference / "result.json"));
  const auto got_result = nlohmann::json::parse(read_file(job_dir / "result.json"));
  EXPECT_EQ(got_result["train_loss"], expected_result["train_loss"]);
  EXPECT_EQ(got_result["val_loss"], expected_result["val_loss"]);
}

}  // namespace
}  // namespace attnlab
