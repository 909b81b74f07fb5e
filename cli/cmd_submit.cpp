// `attnlab submit [-m] [--dry-run] [overrides]`: run `attnlab train` as a Slurm batch job (or, with
// -m, a sweep as one job array) using configs/launcher/slurm.yaml; prints the job id.
// `--dry-run` prints the sbatch script and submits nothing.
#include "cli/command.h"
#include "launch/slurm_submit.h"

namespace attnlab {

int run_submit_command(const CommandArgs& args) { return submit_to_slurm(args, "train"); }

}  // namespace attnlab
