// Child processes (sweep launcher, Slurm submission, SentencePiece training, the plot script):
// start a program with an argv (no shell, so overrides need no quoting) with stdout+stderr going
// to a log file, and wait for whichever child finishes first. Also where the project's Python and
// its scripts/ are found, so every caller that runs Python (attnlab plot, sweep summaries) runs
// the same interpreter on the same files.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace attnlab {

// Starts argv[0] (searched in PATH when it has no '/') with output appended to `log_path` (""
// keeps this process's stdout and stderr). Throws std::runtime_error when the process cannot be
// started.
pid_t spawn_process(const std::vector<std::string>& argv, const std::string& log_path);

struct ExitedProcess {
  pid_t pid = -1;
  int exit_code = -1;  // 128 + signal number when killed by a signal
};

// Blocks until one of this process's children exits.
ExitedProcess wait_any_child();

// Runs argv to completion with output appended to log_path ("": this process's stdout/stderr);
// returns its exit code.
int run_process(const std::vector<std::string>& argv, const std::string& log_path);

// Absolute path of the running executable (/proc/self/exe).
std::string current_executable();

// The Python that plots and summaries run: $ATTNLAB_PYTHON, else the project environment's
// (.venv/bin/python, fixed at build time by CMake).
std::string project_python();

// The path of scripts/<name> (plot_metrics.py, ...): in $ATTNLAB_SCRIPTS_DIR, else in scripts/ of
// the nearest parent of the executable's directory that has it (build directories live inside the
// repository), else ./scripts. Throws UserError naming ATTNLAB_SCRIPTS_DIR when none has it.
std::string project_script(const std::string& name);

}  // namespace attnlab
