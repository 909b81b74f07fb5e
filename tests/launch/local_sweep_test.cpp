// The local sweep launcher and sweep summaries, with real child processes: a small bash program
// stands in for `attnlab train` (it reads run.dir/lr/seed from its arguments and writes
// result.json and metrics.jsonl like the trainer does), so the launcher's process handling,
// parallelism cap, resumability and aggregation are tested without training a model; the summary
// plot is drawn by the shared scripts/plot_metrics.py (a stand-in script shows it is that one).
#include "launch/local_sweep.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "launch/sweep_summary.h"
#include "tests/support/fake_job.h"
#include "tests/support/python.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

struct SweepFixture : ::testing::Test {
  void SetUp() override {
    root = fs::temp_directory_path() /
           ("attnlab_sweep_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root);
    fs::create_directories(root);
    script = root / "fake_job.sh";
    std::ofstream(script) << testing::kFakeJob;
    fs::permissions(script, fs::perms::owner_all);
    options.sweep_dir = (root / "sweep").string();
    options.executable = script.string();
    options.command = {"train"};
    options.quiet = true;
  }
  void TearDown() override { fs::remove_all(root); }

  std::vector<config::SweepJob> grid(const std::vector<std::string>& lrs, int seeds) {
    std::vector<config::SweepJob> jobs;
    for (const auto& lr : lrs)
      for (int seed = 1; seed <= seeds; ++seed)
        jobs.push_back({static_cast<int>(jobs.size()),
                        {"lr=" + lr, "seed=" + std::to_string(seed), "model.d_model=8"}});
    return jobs;
  }

  std::vector<std::string> lines(const std::string& name) {
    std::vector<std::string> out;
    std::ifstream file(fs::path(options.sweep_dir) / name);
    for (std::string line; std::getline(file, line);) out.push_back(line);
    return out;
  }

  fs::path root, script;
  LocalSweepOptions options;
};

TEST_F(SweepFixture, RunsAllJobsAndAggregatesMeanAndStdOverSeeds) {
  const auto jobs = grid({"0.1", "0.2"}, 3);
  write_multirun_yaml(options.sweep_dir, jobs, {"attnlab", "train", "-m"}, "local");
  EXPECT_EQ(run_local_sweep(jobs, options), 0);
  EXPECT_EQ(lines("launches").size(), 6u);
  for (const auto& job : jobs) {
    EXPECT_TRUE(job_completed(options.sweep_dir + "/" + std::to_string(job.index)));
    // Each job got its own run.dir as the last argument.
    EXPECT_TRUE(fs::exists(fs::path(options.sweep_dir) / std::to_string(job.index) / "job.log"));
  }

  // lr=0.1: val = 1 + seed for seeds 1..3 -> mean 3, sample std 1; lr=0.2: mean 4, std 1.
  SweepSummary summary = summarize_sweep(options.sweep_dir, /*plot=*/false);
  ASSERT_EQ(summary.rows.size(), 2u);
  EXPECT_EQ(summary.rows[0].configuration, "lr=0.1 model.d_model=8");
  EXPECT_EQ(summary.rows[1].configuration, "lr=0.2 model.d_model=8");
  EXPECT_NEAR(summary.rows[0].mean.at("val_loss"), 3.0, 1e-9);
  EXPECT_NEAR(summary.rows[0].stddev.at("val_loss"), 1.0, 1e-9);
  EXPECT_NEAR(summary.rows[1].mean.at("val_loss"), 4.0, 1e-9);
  EXPECT_NEAR(summary.rows[1].stddev.at("val_loss"), 1.0, 1e-9);
  EXPECT_EQ(summary.rows[0].jobs.size(), 3u);
  EXPECT_EQ(summary.metrics.front(), "val_loss");

  std::ifstream csv(summary.csv_path);
  std::string header, row;
  std::getline(csv, header);
  std::getline(csv, row);
  EXPECT_EQ(header.rfind("configuration,n,missing,val_loss_mean,val_loss_std", 0), 0u) << header;
  EXPECT_EQ(row.rfind("lr=0.1 model.d_model=8,3,0,3,1", 0), 0u) << row;
  // Labels show only what differs between rows; the shared override is printed once.
  EXPECT_EQ(summary.rows[0].label, "lr=0.1");
  EXPECT_EQ(summary.common, "model.d_model=8");
  EXPECT_NE(summary.markdown.find("Every row also has: model.d_model=8"), std::string::npos)
      << summary.markdown;
  EXPECT_NE(summary.markdown.find("| lr=0.2 | 3 | 4.000 ± 1.000 |"), std::string::npos)
      << summary.markdown;
}

TEST_F(SweepFixture, ParallelCapIsRespected) {
  const auto jobs = grid({"0.1", "0.2"}, 3);
  options.launcher.parallel(3).summarize(false);
  EXPECT_EQ(run_local_sweep(jobs, options), 0);
  int most = 0;
  for (const auto& line : lines("concurrency")) most = std::max(most, std::stoi(line));
  EXPECT_LE(most, 3);  // never more than launcher.parallel at once
  EXPECT_GE(most, 2);  // and really in parallel (three start together, each sleeps 0.6 s)
}

TEST_F(SweepFixture, RerunSkipsCompletedJobsAndRetriesFailedOnes) {
  auto jobs = grid({"0.1", "bad"}, 2);
  write_multirun_yaml(options.sweep_dir, jobs, {"attnlab", "train", "-m"}, "local");
  EXPECT_EQ(run_local_sweep(jobs, options), 2);  // the two lr=bad jobs fail
  EXPECT_EQ(lines("launches").size(), 4u);

  SweepSummary partial = summarize_sweep(options.sweep_dir, false);
  ASSERT_EQ(partial.rows.size(), 2u);
  EXPECT_EQ(partial.rows[1].missing, 2);
  EXPECT_NE(partial.markdown.find("(+2 missing)"), std::string::npos);

  // Same sweep again: only the failed jobs run.
  EXPECT_EQ(run_local_sweep(jobs, options), 2);
  EXPECT_EQ(lines("launches").size(), 6u);
  // A removed result makes that job run again, and nothing else.
  fs::remove(fs::path(options.sweep_dir) / "0" / "result.json");
  jobs = grid({"0.1"}, 2);
  EXPECT_EQ(run_local_sweep(jobs, options), 0);
  const auto launches = lines("launches");
  ASSERT_EQ(launches.size(), 7u);
  EXPECT_NE(launches.back().find("seed=1"), std::string::npos) << launches.back();
}

TEST_F(SweepFixture, SummarizeWithoutMultirunYamlUsesJobDirectories) {
  // A sweep dir written by other means (e.g. a Slurm array whose multirun.yaml was lost):
  // numbered dirs with overrides.yaml and metrics.jsonl only.
  for (int job = 0; job < 2; ++job) {
    const fs::path dir = fs::path(options.sweep_dir) / std::to_string(job);
    fs::create_directories(dir);
    std::ofstream(dir / "overrides.yaml") << "- \"attention=mha\"\n- \"seed=" << job << "\"\n";
    std::ofstream(dir / "metrics.jsonl") << "{\"step\": 1, \"val_loss\": " << 2 + job << "}\n"
                                         << "{\"step\": 2, \"val_loss\": " << 1 + 2 * job << "}\n";
  }
  SweepSummary summary = summarize_sweep(options.sweep_dir, false);
  ASSERT_EQ(summary.rows.size(), 1u);
  EXPECT_EQ(summary.rows[0].configuration, "attention=mha");
  // Last values 1 and 3: mean 2, std sqrt(2).
  EXPECT_NEAR(summary.rows[0].mean.at("val_loss"), 2.0, 1e-9);
  EXPECT_NEAR(summary.rows[0].stddev.at("val_loss"), std::sqrt(2.0), 1e-9);
}

TEST_F(SweepFixture, PlotIsWrittenWhenMatplotlibIsAvailable) {
  REQUIRE_PYTHON_WITH("matplotlib");
  const auto jobs = grid({"0.1", "0.3"}, 2);
  write_multirun_yaml(options.sweep_dir, jobs, {"attnlab", "train", "-m"}, "local");
  EXPECT_EQ(run_local_sweep(jobs, options), 0);  // summarize=true: writes the plot too
  EXPECT_GT(fs::file_size(fs::path(options.sweep_dir) / "summary.png"), 1000u);

  // What the figure holds, read back from its axes by the plot script. val_loss = 10 lr + seed:
  // lr=0.1 -> 2, 3 (mean 2.5, std 0.707); lr=0.3 -> 4, 5 (mean 4.5).
  std::ifstream file(fs::path(options.sweep_dir) / "summary_series.json");
  ASSERT_TRUE(file.good());
  const nlohmann::json series = nlohmann::json::parse(file);
  ASSERT_EQ(series["points"].size(), 2u) << series.dump();
  EXPECT_NEAR(series["points"]["lr=0.1"][0].get<double>(), 2.5, 1e-9) << series.dump();
  EXPECT_NEAR(series["points"]["lr=0.1"][1].get<double>(), std::sqrt(0.5), 1e-9);
  EXPECT_NEAR(series["points"]["lr=0.3"][0].get<double>(), 4.5, 1e-9);
  // The axis fits the data (1.79 .. 5.21 padded), it does not start at 0.
  const double lo = series["points_xlim"][0], hi = series["points_xlim"][1];
  EXPECT_GT(lo, 1.0);
  EXPECT_LT(lo, 2.5 - std::sqrt(0.5));
  EXPECT_GT(hi, 4.5 + std::sqrt(0.5));
  EXPECT_LT(hi, 6.0);
  // Curves from every logged evaluation (steps 1 and 2), mean over the two seeds.
  EXPECT_EQ(series["curve_key"], "val/loss");
  const auto& curve = series["curves"]["lr=0.1 (n=2)"];
  ASSERT_EQ(curve.size(), 2u) << series.dump();
  EXPECT_EQ(curve[0][0].get<double>(), 1.0);
  EXPECT_NEAR(curve[0][1].get<double>(), 3.5, 1e-9);  // (3 + 4) / 2
  EXPECT_NEAR(curve[1][1].get<double>(), 2.5, 1e-9);
  EXPECT_NEAR(series["curves"]["lr=0.3 (n=2)"][1][1].get<double>(), 4.5, 1e-9);
}

// summary.png comes from scripts/plot_metrics.py --sweep, the script `attnlab plot` runs, not
// from Python text inside the C++: a stand-in script put where project_script() looks first
// ($ATTNLAB_SCRIPTS_DIR) is the one that runs, with the rows' data and the output paths. When it
// fails there is no plot and its output stays in summary_plot.log.
TEST_F(SweepFixture, PlotIsDrawnByTheSharedPlotScript) {
  const fs::path scripts = root / "scripts";
  fs::create_directories(scripts);
  const fs::path calls = root / "plot_calls.jsonl";
  auto write_stub = [&](const std::string& body) {
    std::ofstream(scripts / "plot_metrics.py")
        << "import json, sys\n"
        << "data = json.load(open(sys.argv[2])) if sys.argv[1] == '--sweep' else None\n"
        << "open('" << calls.string() << "', 'a').write(json.dumps("
        << "{'argv': sys.argv[1:], 'data': data}) + '\\n')\n"
        << body;
  };
  write_stub("open(sys.argv[3], 'wb').write(b'\\x89PNG stand-in')\n");
  struct ScriptsDir {  // restored at the end: the other tests run the real script
    explicit ScriptsDir(const fs::path& dir) {
      if (const char* old = std::getenv("ATTNLAB_SCRIPTS_DIR")) saved = old;
      setenv("ATTNLAB_SCRIPTS_DIR", dir.c_str(), 1);
    }
    ~ScriptsDir() {
      if (saved.empty())
        unsetenv("ATTNLAB_SCRIPTS_DIR");
      else
        setenv("ATTNLAB_SCRIPTS_DIR", saved.c_str(), 1);
    }
    std::string saved;
  } scripts_dir(scripts);

  const auto jobs = grid({"0.1", "0.3"}, 2);
  write_multirun_yaml(options.sweep_dir, jobs, {"attnlab", "train", "-m"}, "local");
  options.launcher.summarize(false);
  EXPECT_EQ(run_local_sweep(jobs, options), 0);
  const fs::path sweep(options.sweep_dir);
  SweepSummary summary = summarize_sweep(options.sweep_dir);
  EXPECT_EQ(summary.plot_path, (sweep / "summary.png").string());
  std::ifstream png(sweep / "summary.png");
  std::string content((std::istreambuf_iterator<char>(png)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "\x89PNG stand-in");
  const auto call_lines = [&] {
    std::vector<nlohmann::json> out;
    std::ifstream file(calls);
    for (std::string line; std::getline(file, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  };
  auto made = call_lines();
  ASSERT_EQ(made.size(), 1u);
  const nlohmann::json& argv = made[0]["argv"];
  ASSERT_EQ(argv.size(), 5u) << argv.dump();
  EXPECT_EQ(argv[0], "--sweep");
  EXPECT_EQ(argv[2], (sweep / "summary.png").string());
  EXPECT_EQ(argv[3], "--series-json");
  EXPECT_EQ(argv[4], (sweep / "summary_series.json").string());
  const nlohmann::json& data = made[0]["data"];
  EXPECT_EQ(data["metric"], "val_loss");
  ASSERT_EQ(data["rows"].size(), 2u) << data.dump();
  EXPECT_EQ(data["rows"][0]["name"], "lr=0.1");
  EXPECT_NEAR(data["rows"][0]["mean"].get<double>(), 2.5, 1e-12);
  EXPECT_EQ(data["common"], "model.d_model=8");
  ASSERT_EQ(data["jobs"].size(), 4u);
  EXPECT_EQ(data["jobs"][3]["config"], "lr=0.3");
  EXPECT_EQ(data["jobs"][3]["metrics"], (sweep / "3" / "metrics.jsonl").string());
  // The data file is the run's only leftover: gone afterwards, like any temporary script.
  EXPECT_FALSE(fs::exists(argv[1].get<std::string>()));
  EXPECT_FALSE(fs::exists(sweep / ".summary_plot.py"));
  EXPECT_FALSE(fs::exists(sweep / "summary_plot.log"));

  write_stub("print('no matplotlib here', file=sys.stderr)\nsys.exit(3)\n");
  fs::remove(sweep / "summary.png");
  summary = summarize_sweep(options.sweep_dir);
  EXPECT_EQ(call_lines().size(), 2u);
  EXPECT_TRUE(summary.plot_path.empty());
  std::ifstream log(sweep / "summary_plot.log");
  std::string logged((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(logged.find("no matplotlib here"), std::string::npos) << logged;
}

TEST(SweepSummary, ConfigurationKeyDropsSeedAndRunKeys) {
  EXPECT_EQ(configuration_key(
                {"attention=moh", "seed=3", "run.dir=x", "+launcher=local", "optim.lr=0.1"}),
            "attention=moh optim.lr=0.1");
  EXPECT_EQ(configuration_key({"seed=1"}), "(base)");
  EXPECT_THROW(summarize_sweep("/nonexistent/sweep"), UserError);
}

}  // namespace
}  // namespace attnlab
