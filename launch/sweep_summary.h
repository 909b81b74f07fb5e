// Sweep aggregation (`attnlab summarize DIR [baseline=<row>] [target=<val loss>]`, and the end of
// every local sweep): one row per configuration — a job's overrides minus its seed and
// run-location keys, so seeds are replicates — with mean ± std over seeds of each final metric;
// for the first metric also the 95% confidence interval of the mean (Student t), the difference
// to a baseline row with Welch's t-test p-value, and with a target the first step at which
// val/loss reached it (common/statistics.h). Final metrics are read from every job's result.json
// (or, for a job without one, the last record of each numeric key in metrics.jsonl). Rows are
// labelled by the overrides that differ between them; the ones they share are printed once above
// the table. Writes summary.csv (full configurations, every metric, unrounded), summary.md (a
// legend saying what "±" and the other columns are; numbers rounded: 4 significant digits, rates
// such as tokens/s 3, steps and parameter counts whole; metrics with one value in every job, such
// as step, listed once above the table as "constant: step = 100" instead of as columns) and,
// with the project Python + matplotlib, summary.png drawn by scripts/plot_metrics.py --sweep (the
// script `attnlab plot` runs): the first metric per configuration as a point with a ±std bar over
// seeds on an axis fitted to the data (not from 0), and each configuration's loss curve over every
// logged evaluation (val/loss, else train/loss), mean over seeds with a ±std band.
// summary_series.json holds exactly what was drawn, read back from the figure; when the plot
// fails, the script's output is left in summary_plot.log.
//
// Jobs are found from multirun.yaml (local sweeps and Slurm arrays both write it) or, without
// one, from the numbered sub-directories and their overrides.yaml.
#pragma once

#include <limits>
#include <map>
#include <string>
#include <vector>

namespace attnlab {

struct SweepRow {
  std::string configuration;  // e.g. "attention=moh optim.lr=0.001" ("(base)" if none)
  std::string label;          // only the overrides that differ between rows ("attention=moh")
  std::vector<int> jobs;      // job indices with results
  int missing = 0;            // jobs of this configuration without results
  std::map<std::string, double> mean;                 // metric -> mean over jobs
  std::map<std::string, double> stddev;               // metric -> sample std (n-1; 0 for one job)
  std::map<std::string, std::vector<double>> values;  // metric -> each job's value (job order)
  // The headline metric (SweepSummary::metrics.front()) against the baseline row:
  double ci95 = 0.0;      // half width of the 95% t interval of the mean (NaN below 2 jobs)
  double difference = 0;  // mean - the baseline's mean (0 for the baseline itself)
  double p_value = 0.0;   // Welch's two-sided t test against the baseline (NaN: not testable)
  // With a val-loss target: the first step each job logged val/loss <= target, averaged over
  // the jobs that reached it (NaN when none did), and how many did.
  double target_step = 0.0;
  int reached = 0;
};

struct SweepSummary {
  std::vector<SweepRow> rows;                      // in order of first job
  std::vector<std::string> metrics;                // columns
  std::string csv_path, markdown_path, plot_path;  // plot_path empty when no plot was made
  std::string markdown;                            // the table, also written to summary.md
  std::string common;  // overrides every row shares (not repeated in the labels); "" if none
  int baseline = -1;   // index of the baseline row (-1 with a single row)
  double target = 0;   // the val-loss target (NaN: none)
};

struct SweepSummaryOptions {
  bool plot = true;      // false: no python plot
  std::string baseline;  // the row every other row is compared with, by label or configuration
                         // ("": the first row)
  double target = std::numeric_limits<double>::quiet_NaN();  // val-loss target (NaN: none)
};

// Aggregates the sweep in `sweep_dir` and writes the files. UserError when the directory has no
// jobs, or the baseline names no row (the message lists the labels).
SweepSummary summarize_sweep(const std::string& sweep_dir, const SweepSummaryOptions& options);
inline SweepSummary summarize_sweep(const std::string& sweep_dir, bool plot = true) {
  SweepSummaryOptions options;
  options.plot = plot;
  return summarize_sweep(sweep_dir, options);
}

// The configuration key of a job's overrides: drops seed=, run.*, launcher.* and hydra-style
// ++/+ prefixes are kept; order preserved.
std::string configuration_key(const std::vector<std::string>& overrides);

}  // namespace attnlab
