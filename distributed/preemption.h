// Pre-emption on Slurm: the sbatch script asks for `--signal=USR1@<seconds>` so Slurm warns the
// job before its time limit (or pre-emption). A SIGUSR1 handler only sets an atomic flag; the
// training loop polls it each step (DistributedContext::allreduce_any so all ranks stop at the
// same step), rank 0 writes a checkpoint and calls requeue_slurm_job(), and the requeued job
// resumes from the same run dir.
#pragma once

#include <string>

namespace attnlab {

// Installs the flag-setting handler for `signal_number` (default SIGUSR1). Idempotent.
void install_preemption_handler(int signal_number = 0);
// True once the signal arrived (until clear_preemption()).
bool preemption_requested();
void clear_preemption();
// Raises the flag as if the signal arrived (tests, or a loop that wants to stop early).
void request_preemption();

// Under Slurm (SLURM_JOB_ID set): runs `scontrol requeue <id>` and returns true on success.
// Outside Slurm returns false and does nothing. `message` receives the command or the failure.
bool requeue_slurm_job(std::string* message = nullptr);

}  // namespace attnlab
