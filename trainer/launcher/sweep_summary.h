// Sweep aggregation (`attnlab summarize DIR`, and the end of every local sweep): one row per
// configuration — a job's overrides minus its seed and run-location keys — with mean ± std over
// seeds of each final metric, read from every job's result.json (or, for a job without one, the
// last record of each numeric key in metrics.jsonl). Writes summary.csv, summary.md and, with
// /usr/bin/python3 + matplotlib available, summary.png (final metric per configuration with
// error bars, and validation-loss curves when metrics.jsonl has them).
//
// Jobs are found from multirun.yaml (local sweeps and Slurm arrays both write it) or, without
// one, from the numbered sub-directories and their overrides.yaml.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace attnlab {

struct SweepRow {
  std::string configuration;             // e.g. "attention=moh optim.lr=0.001" ("(base)" if none)
  std::vector<int> jobs;                 // job indices with results
  int missing = 0;                       // jobs of this configuration without results
  std::map<std::string, double> mean;    // metric -> mean over jobs
  std::map<std::string, double> stddev;  // metric -> sample std (n-1; 0 for one job)
};

struct SweepSummary {
  std::vector<SweepRow> rows;                      // in order of first job
  std::vector<std::string> metrics;                // columns
  std::string csv_path, markdown_path, plot_path;  // plot_path empty when no plot was made
  std::string markdown;                            // the table, also written to summary.md
};

// Aggregates the sweep in `sweep_dir` and writes the files. UserError when the directory has no
// jobs. `plot=false` skips the python plot.
SweepSummary summarize_sweep(const std::string& sweep_dir, bool plot = true);

// The configuration key of a job's overrides: drops seed=, run.*, launcher.* and hydra-style
// ++/+ prefixes are kept; order preserved.
std::string configuration_key(const std::vector<std::string>& overrides);

}  // namespace attnlab
