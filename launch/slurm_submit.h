// `attnlab submit [overrides]` and `attnlab train -m ... launcher=slurm`: compose the config with
// launcher=slurm (unless a launcher is given), pin the run dir (a single run) or the sweep dir
// (a -m sweep, one job array) to an absolute path so a requeued job resumes in the same place,
// write the sbatch script there (submit.sbatch), submit it and print the job id.
// CommandArgs.dry_run prints the script and submits nothing (no files are written).
#pragma once

#include <string>

#include "command_line/command_line.h"

namespace attnlab {

// `command` is the attnlab command the job runs (train). Returns the process exit code.
int submit_to_slurm(const CommandArgs& args, const std::string& command);

}  // namespace attnlab
