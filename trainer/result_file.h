// result.json: the mark of a finished run (sweeps skip jobs that have one) and what a second run
// of the same command prints instead of training again. It holds what every task reports (step,
// losses, speeds, parameter counts), then the task's own numbers (TrainSummary::results).
#pragma once

#include <optional>
#include <string>

#include "trainer/task.h"

namespace attnlab {

std::string result_file_path(const std::string& run_dir);

// Writes <run_dir>/result.json atomically.
void write_result_file(const std::string& run_dir, const TrainSummary& summary);

// The summary of a run that finished before; nullopt when the file is missing or cannot be read
// as one (the run is then finished again, which rewrites it).
std::optional<TrainSummary> read_result_file(const std::string& run_dir, const std::string& task);

}  // namespace attnlab
