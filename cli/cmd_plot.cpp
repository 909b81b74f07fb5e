// `attnlab plot run_dir=<dir> [out=<png>] [python=<path>] [series_json=<path>]`: draws train/val
// loss, the loss terms and the learning rate against step from <run_dir>/metrics.jsonl into
// loss.png (series_json: also write the plotted series as JSON, for tests) by running
// scripts/plot_metrics.py (matplotlib, Agg backend). Plotting is optional tooling: training never
// depends on Python. The script is found via $ATTNLAB_SCRIPTS_DIR, then scripts/ in a parent of
// the executable's directory (build dirs live inside the repo), then ./scripts.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "common/error.h"
#include "common/subprocess.h"
#include "cli/command.h"
#include "cli/command_options.h"

extern char** environ;

namespace attnlab {
namespace {
namespace fs = std::filesystem;

constexpr const char* kScript = "plot_metrics.py";

std::string find_script() {
  if (const char* dir = std::getenv("ATTNLAB_SCRIPTS_DIR")) {
    fs::path p = fs::path(dir) / kScript;
    if (fs::exists(p)) return p.string();
  }
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  for (fs::path dir = exe.parent_path(); !ec && !dir.empty() && dir != dir.root_path();
       dir = dir.parent_path()) {
    if (fs::exists(dir / "scripts" / kScript)) return (dir / "scripts" / kScript).string();
  }
  if (fs::exists(fs::path("scripts") / kScript)) return (fs::path("scripts") / kScript).string();
  throw UserError(std::string("cannot find scripts/") + kScript +
                  "; set ATTNLAB_SCRIPTS_DIR to the repository's scripts/ directory");
}

// Runs argv without a shell; returns the exit status (or -1 when it could not start).
int run_process(const std::vector<std::string>& argv) {
  std::vector<char*> cargs;
  for (const auto& a : argv) cargs.push_back(const_cast<char*>(a.c_str()));
  cargs.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, cargs[0], nullptr, nullptr, cargs.data(), environ) != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

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
  std::vector<std::string> argv = {python, find_script(), run_dir, out};
  if (options.has("series_json")) {
    argv.push_back("--series-json");
    argv.push_back(options.get("series_json"));
  }
  int rc = run_process(argv);
  check_user(rc != 3, "attnlab plot: matplotlib is not installed for " + python +
                          " (scripts/setup.sh installs it into .venv)");
  check_user(rc != 4, "attnlab plot: '" + metrics.string() + "' holds no loss or lr values");
  check_user(rc == 0, "attnlab plot: " + python + " " + kScript + " failed (exit code " +
                          std::to_string(rc) + ")");
  std::cout << "wrote " << out << "\n";
  return 0;
}

}  // namespace attnlab
