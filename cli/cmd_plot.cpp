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

// `attnlab plot`'s keys.
struct PlotCommandOptions {
  TORCH_ARG(std::optional<std::string>, run_dir) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, out) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, python) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, series_json) = std::nullopt;

 public:
  template <class V>
  void visit(V& v) {
    v("run_dir", run_dir(), "the run to plot (required)");
    v("out", out(), "the PNG to write (default: <run_dir>/loss.png)");
    v("python", python(), "the Python that runs the plot (default: the project's .venv)");
    v("series_json", series_json(), "also write the plotted series as JSON to this file");
  }
};

}  // namespace

int run_plot_command(const CommandArgs& args) {
  const auto options = bind_command_options<PlotCommandOptions>("plot", args.overrides);
  const std::string& run_dir = required_option("plot", "run_dir", options.run_dir());
  const fs::path metrics = fs::path(run_dir) / "metrics.jsonl";
  check_user(fs::exists(metrics) && fs::file_size(metrics) > 0,
             "attnlab plot: no metrics in '" + run_dir + "' (expected " + metrics.string() + ")");
  const std::string python = options.python().value_or(project_python());
  check_user(access(python.c_str(), X_OK) == 0,
             "attnlab plot: Python interpreter '" + python +
                 "' not found; run scripts/setup.sh (it creates .venv) or pass python=<path>");
  const std::string out = options.out().value_or((fs::path(run_dir) / "loss.png").string());
  std::vector<std::string> argv = {python, project_script(kScript), run_dir, out};
  if (options.series_json()) {
    argv.push_back("--series-json");
    argv.push_back(*options.series_json());
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
