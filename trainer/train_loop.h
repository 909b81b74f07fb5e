// The one training loop behind `attnlab train`, for every task (trainer/task.h: `lm`,
// `classification`): the task supplies model, batches, loss and validation; this loop composes
// optimizer and schedule from the resolved config; resumes bitwise-exactly from the run dir's
// latest checkpoint (`run.resume=auto`); data-parallel over MPI when launched by mpirun/srun;
// evaluates, logs, checkpoints atomically and stops cleanly on SIGINT/SIGTERM/SIGHUP/SIGUSR1.
//
// Run-directory safety: the run dir is locked (config::RunDirectoryLock) for the whole run, and
// config.yaml, overrides.yaml, command.txt and git.txt are written only after everything was
// validated, the existing checkpoint included, so a command that fails leaves the run as it was.
// Divergence: trainer.on_nonfinite (halt | skip | rollback) and the spike detector, see
// nonfinite_guard.h; a non-finite step never reaches a checkpoint.
#pragma once

#include <string>
#include <vector>

#include "config/config_node.h"
#include "trainer/task.h"

namespace attnlab {

// The exit code of `attnlab train` after a signal stop: 128 + 2 (SIGINT) = 130, or 143 for
// SIGTERM and SIGHUP; 0 when no such signal stopped the run.
int exit_code_for(const TrainSummary& summary);

// `config` is the composed, resolved config; `overrides`/`argv` are recorded in the run dir.
TrainSummary train(const ConfigNode& config, const std::vector<std::string>& overrides,
                   const std::vector<std::string>& argv);

}  // namespace attnlab
