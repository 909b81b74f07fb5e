// `attnlab summarize DIR`: (re)builds summary.csv, summary.md and summary.png of a sweep directory
// — a local -m sweep or a Slurm job array — from its jobs' result.json / metrics.jsonl, and prints
// the table. Works on partial sweeps (jobs without results are counted as missing).
// `baseline=<row label>` picks the row the others are compared with (default: the first);
// `target=<val loss>` adds the first step each configuration reached it.
#include <cmath>
#include <iostream>

#include "cli/command.h"
#include "common/error.h"
#include "launch/sweep_summary.h"

namespace attnlab {

int run_summarize_command(const CommandArgs& args) {
  const std::string usage =
      "usage: attnlab summarize <sweep dir> [baseline=<row label>] [target=<val loss>] "
      "[plot=true|false]";
  std::string dir;
  SweepSummaryOptions options;
  for (const auto& arg : args.overrides) {
    const auto eq = arg.find('=');
    const std::string key = eq == std::string::npos ? "" : arg.substr(0, eq);
    const std::string value = eq == std::string::npos ? arg : arg.substr(eq + 1);
    if (key == "baseline") {
      options.baseline = value;
    } else if (key == "target") {
      try {
        size_t used = 0;
        options.target = std::stod(value, &used);
        check_user(used == value.size() && std::isfinite(options.target), "");
      } catch (const std::exception&) {
        throw UserError("summarize: target='" + value + "' is not a number (a val-loss level)");
      }
    } else if (key == "plot") {
      check_user(value == "true" || value == "false",
                 "summarize: plot='" + value + "': expected true or false");
      options.plot = value == "true";
    } else {
      check_user(dir.empty() && key.empty(),
                 "summarize: unexpected argument '" + arg + "'; " + usage);
      dir = arg;
    }
  }
  check_user(!dir.empty(), usage + " (the directory holding multirun.yaml)");
  SweepSummary summary = summarize_sweep(dir, options);
  std::cout << summary.markdown << "\nwrote " << summary.csv_path << ", " << summary.markdown_path;
  if (!summary.plot_path.empty()) std::cout << ", " << summary.plot_path;
  std::cout << "\n";
  return 0;
}

}  // namespace attnlab
