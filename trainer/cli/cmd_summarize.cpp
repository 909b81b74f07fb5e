// `attnlab summarize DIR`: (re)builds summary.csv, summary.md and summary.png of a sweep directory
// — a local -m sweep or a Slurm job array — from its jobs' result.json / metrics.jsonl, and prints
// the table. Works on partial sweeps (jobs without results are counted as missing).
#include <iostream>

#include "common/error.h"
#include "trainer/cli/command.h"
#include "trainer/launcher/sweep_summary.h"

namespace attnlab {

int run_summarize_command(const CommandArgs& args) {
  check_user(args.overrides.size() == 1,
             "usage: attnlab summarize <sweep dir> (the directory holding multirun.yaml)");
  SweepSummary summary = summarize_sweep(args.overrides.front());
  std::cout << summary.markdown << "\nwrote " << summary.csv_path << ", " << summary.markdown_path;
  if (!summary.plot_path.empty()) std::cout << ", " << summary.plot_path;
  std::cout << "\n";
  return 0;
}

}  // namespace attnlab
