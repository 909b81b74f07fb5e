// The run directory's error log: where the error boundary (apps/attnlab/runtime_entry.cpp) writes
// the full report of a failed command (exception type, whole message, C++ backtrace when LibTorch
// recorded one), while the terminal gets one line. A command names its run directory as soon as
// it has one (prepare_run_directory, load_run); before that, failures are only printed.
#pragma once

#include <string>

namespace attnlab {

constexpr const char* kErrorLogName = "error.log";

// Records `run_dir` as the current command's run directory (empty: none).
void set_error_log_directory(const std::string& run_dir);
std::string error_log_directory();

// Appends `report` (with a UTC timestamp header) to <run dir>/error.log. Returns the log's path,
// or "" when no run directory is set or the file cannot be written (never throws).
std::string append_error_log(const std::string& report);

}  // namespace attnlab
