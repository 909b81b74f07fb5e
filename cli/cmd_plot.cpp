// `attnlab plot run_dir=<dir> [out=<png>] [python=<path>] [series_json=<path>]`: draws train/val
// loss, every loss term (train/loss/<term>, the modules' train/aux/<name>), a classification run's
// val accuracy and macro-F1, and the learning rate against step from <run_dir>/metrics.jsonl into
// loss.png (series_json: also write the plotted series as JSON, for tests) by running
// scripts/plot_metrics.py — the one plot script, which sweep summaries run too
// (launch/sweep_summary.cpp) — with matplotlib's Agg backend. Plotting is optional tooling:
// training never depends on Python. The interpreter and the script are found by
// common/subprocess.h (project_python(), project_script()).
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "cli/command_options.h"
#include "common/error.h"
#include "common/subprocess.h"

namespace attnlab {
namespace {
namespace fs = std::filesystem;

constexpr const char* kScript = "plot_metrics.py";

}  // namespace

int run_plot_command(const CommandArgs& args) {
  CommandOptions options("plot", args.overrides, {"run_dir", "out", "python", "series_json"});
  const std::string run_dir = options.get("run_dir");
  const fs::path metrics = fs::path(run_dir) / "metrics.jsonl";
  check_user(fs::exists(metrics) && fs::file_size(metrics) > 0,
             "attnlab plot: no metrics in '" + run_dir + "' (expected " + metrics.string() + ")");
  const std::string python = options.get_or("python", project_python());
  check_user(access(python.c_str(), X_OK) == 0,
             "attnlab plot: Python interpreter '" + python +
                 "' not found; run scripts/setup.sh (it creates .venv) or pass python=<path>");
  const std::string out = options.get_or("out", (fs::path(run_dir) / "loss.png").string());
  std::vector<std::string> argv = {python, project_script(kScript), run_dir, out};
  if (options.has("series_json")) {
    argv.push_back("--series-json");
    argv.push_back(options.get("series_json"));
  }
  const int rc = run_process(argv, /*log_path=*/"");  // Python's messages reach the terminal
  check_user(rc != 3, "attnlab plot: matplotlib is not installed for " + python +
                          " (scripts/setup.sh installs it into .venv)");
  check_user(rc != 4, "attnlab plot: '" + metrics.string() + "' holds no loss or lr values");
  check_user(rc == 0, "attnlab plot: " + python + " " + kScript + " failed (exit code " +
                          std::to_string(rc) + ")");
  std::cout << "wrote " << out << "\n";
  return 0;
}

}  // namespace attnlab
