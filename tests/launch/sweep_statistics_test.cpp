// The statistics of sweep summaries (common/statistics.h) against scipy.stats, computed in the
// same run by the project Python: Student t CDF and quantiles, 95% confidence intervals of a
// mean, Welch's t-test; and `attnlab summarize` with baseline= and target= on a sweep directory
// whose numbers are known, and the summary.md a reader gets: what "±" is, rounded numbers, and
// metrics with one value everywhere stated once instead of as columns.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/statistics.h"
#include "launch/sweep_summary.h"
#include "tests/support/python.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Runs a Python snippet with the project interpreter; returns what it prints as JSON.
json python_json(const std::string& code) {
  const fs::path script =
      fs::temp_directory_path() / ("attnlab_stats_" + std::to_string(::getpid()) + ".py");
  std::ofstream(script) << code;
  const std::string command = "'" + testing::project_python() + "' '" + script.string() + "'";
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  char buffer[4096];
  size_t n;
  while (pipe && (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  const int status = pipe ? ::pclose(pipe) : -1;
  fs::remove(script);
  EXPECT_EQ(status, 0) << out;
  return json::parse(out, nullptr, false);
}

const std::vector<std::vector<double>> kGroups = {{4.07, 4.11, 4.05},
                                                  {4.15, 4.19, 4.12, 4.16},
                                                  {3.9, 3.95},
                                                  {5.0, 5.0001, 4.9999, 5},
                                                  {1.0, 2.0, 4.0, 8.0, 16.0}};

TEST(SweepStatistics, MatchScipyStats) {
  REQUIRE_PYTHON_WITH("scipy");
  const json expected = python_json(R"PY(
import json
from scipy import stats
groups = [[4.07, 4.11, 4.05], [4.15, 4.19, 4.12, 4.16], [3.9, 3.95], [5.0, 5.0001, 4.9999, 5],
          [1.0, 2.0, 4.0, 8.0, 16.0]]
out = {"cdf": [[t, df, stats.t.cdf(t, df)] for t in (-7.5, -2.0, -0.3, 0.0, 0.9, 2.5, 12.0)
               for df in (1, 1.7, 3, 9.4, 30, 200)],
       "ppf": [[p, df, stats.t.ppf(p, df)] for p in (0.005, 0.1, 0.6, 0.975, 0.9995)
               for df in (1, 2, 4.5, 17, 120)],
       "ci": [], "welch": []}
for g in groups:
    m = sum(g) / len(g)
    lo, hi = stats.t.interval(0.95, len(g) - 1, loc=m, scale=stats.sem(g))
    out["ci"].append((hi - lo) / 2)
for a in groups:
    for b in groups:
        if a is not b:
            r = stats.ttest_ind(a, b, equal_var=False)
            out["welch"].append([float(r.statistic), float(r.pvalue)])
print(json.dumps(out))
)PY");
  ASSERT_TRUE(expected.is_object());
  for (const auto& row : expected["cdf"]) {
    const double want = row[2];
    EXPECT_NEAR(student_t_cdf(row[0], row[1]), want, 1e-12 + 1e-10 * want)
        << "t=" << row[0] << " df=" << row[1];
  }
  for (const auto& row : expected["ppf"]) {
    const double want = row[2];
    EXPECT_NEAR(student_t_quantile(row[0], row[1]), want, 1e-9 * std::max(1.0, std::fabs(want)))
        << "p=" << row[0] << " df=" << row[1];
  }
  for (size_t g = 0; g < kGroups.size(); ++g)
    EXPECT_NEAR(confidence_half_width(mean_and_std(kGroups[g])), expected["ci"][g].get<double>(),
                1e-9)
        << "group " << g;
  size_t k = 0;
  for (size_t a = 0; a < kGroups.size(); ++a) {
    for (size_t b = 0; b < kGroups.size(); ++b) {
      if (a == b) continue;
      const WelchTest test = welch_t_test(kGroups[a], kGroups[b]);
      EXPECT_NEAR(test.t, expected["welch"][k][0].get<double>(), 1e-9) << a << " vs " << b;
      const double p = expected["welch"][k][1];
      EXPECT_NEAR(test.p_value, p, 1e-10 + 1e-8 * p) << a << " vs " << b;
      ++k;
    }
  }
  // Not testable: one value, or no variance at all.
  EXPECT_TRUE(std::isnan(welch_t_test({1.0}, {1.0, 2.0}).p_value));
  EXPECT_TRUE(std::isnan(welch_t_test({1.0, 1.0}, {2.0, 2.0}).p_value));
  EXPECT_TRUE(std::isnan(confidence_half_width(mean_and_std({3.0}))));
}

// A sweep directory written by hand: two configurations x three seeds with known val/loss
// curves; summarize with a baseline and a target.
TEST(SweepStatistics, SummarizeReportsIntervalsTestsAndStepsToTarget) {
  const fs::path dir =
      fs::temp_directory_path() / ("attnlab_sweep_stats_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::vector<std::vector<double>> finals = {{4.07, 4.11, 4.05}, {4.15, 4.19, 4.12}};
  int job = 0;
  std::string multirun = "jobs:\n";
  for (int config = 0; config < 2; ++config) {
    for (int seed = 0; seed < 3; ++seed, ++job) {
      const fs::path job_dir = dir / std::to_string(job);
      fs::create_directories(job_dir);
      const std::string attention = config == 0 ? "mha" : "diff";
      multirun += "  - index: " + std::to_string(job) +
                  "\n    overrides: [\"attention=" + attention +
                  "\", \"seed=" + std::to_string(seed) + "\", \"data=sotu\"]\n";
      // val/loss 6, 5, 4.5 then the final value at steps 10, 20, 30, 40: target 4.6 is first
      // reached at step 30 by every job.
      std::ofstream metrics(job_dir / "metrics.jsonl");
      const double curve[3] = {6.0, 5.0, 4.5};
      for (int i = 0; i < 3; ++i)
        metrics << json{{"step", 10 * (i + 1)}, {"val/loss", curve[i]}}.dump() << "\n";
      metrics << json{{"step", 40}, {"val/loss", finals[config][seed]}}.dump() << "\n";
      std::ofstream(job_dir / "result.json")
          << json{{"val_loss", finals[config][seed]}, {"step", 40}}.dump();
    }
  }
  std::ofstream(dir / "multirun.yaml") << multirun;

  SweepSummaryOptions options;
  options.plot = false;
  options.baseline = "attention=mha";
  options.target = 4.6;
  const SweepSummary summary = summarize_sweep(dir.string(), options);
  ASSERT_EQ(summary.rows.size(), 2u);
  EXPECT_EQ(summary.baseline, 0);
  EXPECT_EQ(summary.common, "data=sotu");
  const SweepRow& mha = summary.rows[0];
  const SweepRow& diff = summary.rows[1];
  EXPECT_EQ(diff.label, "attention=diff");
  EXPECT_NEAR(mha.ci95, confidence_half_width(mean_and_std(finals[0])), 1e-12);
  EXPECT_NEAR(diff.difference, (4.15 + 4.19 + 4.12) / 3 - (4.07 + 4.11 + 4.05) / 3, 1e-12);
  EXPECT_NEAR(diff.p_value, welch_t_test(finals[1], finals[0]).p_value, 1e-12);
  EXPECT_GT(diff.p_value, 0.0);
  EXPECT_LT(diff.p_value, 0.1);
  EXPECT_EQ(mha.reached, 3);
  EXPECT_DOUBLE_EQ(mha.target_step, 30.0);
  EXPECT_NE(summary.markdown.find("| attention=mha | 3 |"), std::string::npos) << summary.markdown;
  EXPECT_NE(summary.markdown.find("baseline"), std::string::npos) << summary.markdown;
  EXPECT_NE(summary.markdown.find("| 30 (3/3) |"), std::string::npos) << summary.markdown;
  EXPECT_NE(summary.markdown.find("steps to val_loss ≤ 4.6"), std::string::npos)
      << summary.markdown;

  options.baseline = "attention=gda";
  try {
    summarize_sweep(dir.string(), options);
    FAIL() << "an unknown baseline was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("rows: 'attention=mha', 'attention=diff'"),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

// summary.md as a reader sees it: one legend saying that "±" is the sample std over seeds (and
// what the 95% CI, Δ and p columns are), numbers rounded (losses 4 significant digits, tokens/s
// 3), and step and parameters — the same in every job — stated once above the table instead of
// as "40 ± 0" columns. summary.csv keeps every column unrounded. The expected cells were computed
// with Python (statistics.stdev, scipy.stats.t.ppf and ttest_ind(equal_var=False)).
TEST(SweepStatistics, SummaryMarkdownExplainsPlusMinusRoundsAndStatesConstantsOnce) {
  const fs::path dir =
      fs::temp_directory_path() / ("attnlab_sweep_md_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::vector<std::vector<double>> val = {{4.0712345, 4.1123456, 4.0498765},
                                                {4.1534567, 4.1911111, 4.1234567}};
  const std::vector<std::vector<double>> train = {{3.99991, 4.00012, 4.00004},
                                                  {4.0801, 4.0702, 4.0903}};
  const std::vector<std::vector<double>> speed = {{12345.678, 12401.2, 12388.9},
                                                  {9876.54, 9901.23, 9855.5}};
  std::string multirun = "jobs:\n";
  for (int job = 0; job < 6; ++job) {
    const int config = job / 3, seed = job % 3;
    fs::create_directories(dir / std::to_string(job));
    multirun += "  - index: " + std::to_string(job) +
                "\n    overrides: [\"attention=" + (config == 0 ? "mha" : "diff") +
                "\", \"seed=" + std::to_string(seed) + "\"]\n";
    std::ofstream(dir / std::to_string(job) / "result.json") << json{
        {"val_loss", val[config][seed]},
        {"train_loss", train[config][seed]},
        {"tokens_per_s", speed[config][seed]},
        {"step", 40},
        {"parameters", 1234567}}.dump();
  }
  std::ofstream(dir / "multirun.yaml") << multirun;
  SweepSummaryOptions options;
  options.plot = false;
  const SweepSummary summary = summarize_sweep(dir.string(), options);
  const std::string& md = summary.markdown;

  EXPECT_NE(md.find("constant: step = 40, parameters = 1234567\n"), std::string::npos) << md;
  EXPECT_NE(md.find("mean ± sample standard deviation over a row's n seeds"), std::string::npos)
      << md;
  EXPECT_NE(md.find("mean ± t(0.975, n − 1) · std / √n"), std::string::npos) << md;
  EXPECT_NE(md.find("Welch's t-test"), std::string::npos) << md;
  EXPECT_NE(md.find("| configuration | n | val_loss | 95% CI | Δ vs baseline | p (Welch) | "
                    "train_loss | tokens_per_s |\n"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| attention=mha | 3 | 4.078 ± 0.03175 | [3.999, 4.157] | baseline | | "
                    "4.000 ± 0.0001060 | 12400 ± 29.2 |\n"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| attention=diff | 3 | 4.156 ± 0.03390 | [4.072, 4.240] | +0.07819 | 0.0437 "
                    "| 4.080 ± 0.01005 | 9880 ± 22.9 |\n"),
            std::string::npos)
      << md;
  EXPECT_EQ(md.find("| step |"), std::string::npos) << md;
  EXPECT_EQ(md.find("parameters |"), std::string::npos) << md;
  EXPECT_EQ(md.find(" ± 0 |"), std::string::npos) << md;
  // The legend is said once.
  const std::string legend = "sample standard deviation";
  EXPECT_EQ(md.find(legend, md.find(legend) + 1), std::string::npos) << md;

  std::ifstream file(summary.markdown_path);
  const std::string written((std::istreambuf_iterator<char>(file)),
                            std::istreambuf_iterator<char>());
  EXPECT_NE(written.find(md), std::string::npos);
  std::ifstream csv(summary.csv_path);
  std::string header, row;
  std::getline(csv, header);
  std::getline(csv, row);
  EXPECT_NE(header.find("step_mean,step_std"), std::string::npos) << header;
  EXPECT_NE(header.find("parameters_mean"), std::string::npos) << header;
  EXPECT_NE(row.find("4.07782,0.0317508"), std::string::npos) << row;  // %.6g, as before
  fs::remove_all(dir);
}

}  // namespace
}  // namespace attnlab
