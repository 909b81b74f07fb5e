// Child processes (sweep launcher, Slurm submission, SentencePiece training): start a program
// with an argv (no shell, so overrides need no quoting) with stdout+stderr going to a log file,
// and wait for whichever child finishes first.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace attnlab {

// Starts argv[0] (searched in PATH when it has no '/') with output appended to `log_path`.
// Throws std::runtime_error when the process cannot be started.
pid_t spawn_process(const std::vector<std::string>& argv, const std::string& log_path);

struct ExitedProcess {
  pid_t pid = -1;
  int exit_code = -1;  // 128 + signal number when killed by a signal
};

// Blocks until one of this process's children exits.
ExitedProcess wait_any_child();

// Runs argv to completion with output appended to log_path; returns its exit code.
int run_process(const std::vector<std::string>& argv, const std::string& log_path);

// Absolute path of the running executable (/proc/self/exe).
std::string current_executable();

// The Python that plots and summaries run: $ATTNLAB_PYTHON, else the project environment's
// (.venv/bin/python, fixed at build time by CMake).
std::string project_python();

}  // namespace attnlab
