// Slurm batch scripts from `configs/launcher/slurm.yaml` (launcher.*): resources, pre-emption
// signal, requeue, environment setup lines and an `srun` line that starts every MPI rank of
// `attnlab`. A sweep becomes one job array (`--array=0-N%parallelism`) whose tasks pick their
// overrides by SLURM_ARRAY_TASK_ID.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace attnlab {

struct SlurmOptions {
  int nodes = 1;
  int tasks_per_node = 1;  // MPI ranks per node
  int cpus_per_task = 1;
  int gpus_per_node = 0;
  std::string mem;  // e.g. "8G"; empty = cluster default
  std::string time = "01:00:00";
  std::string partition, account, qos;
  std::string job_name = "attnlab";
  int array_parallelism = 16;  // the %N cap of a sweep's job array
  std::string signal = "USR1";
  int signal_delay_s = 120;  // --signal=USR1@120: warning before the time limit
  bool requeue = true;
  std::string mpi = "pmix";               // srun --mpi=...; "none" for a single task without MPI
  std::vector<std::string> sbatch_extra;  // extra "#SBATCH" options, e.g. "--constraint=a100"
  std::vector<std::string> setup;         // shell lines before srun, e.g. "module load openmpi"
  std::vector<std::string> srun_args;     // extra srun options
  std::string sbatch = "sbatch";          // the submit program
};

// launcher.* of a composed config; UserError on bad values.
SlurmOptions slurm_options_from_config(const YAML::Node& config);

struct SlurmJobSpec {
  std::string workdir;                 // --chdir (relative paths in overrides resolve here)
  std::string output;                  // --output pattern (its directory must exist)
  std::vector<std::string> program;    // e.g. {"/abs/attnlab", "train"}
  std::vector<std::string> arguments;  // a single job's overrides
  std::vector<std::vector<std::string>> array_arguments;  // a sweep: task i's overrides
};

// The full sbatch script text.
std::string render_sbatch_script(const SlurmOptions& options, const SlurmJobSpec& spec);

// Single-quotes `word` for bash.
std::string shell_quote(const std::string& word);

// Runs `<sbatch> --parsable <script>`; returns the job id. UserError with sbatch's message on
// failure (e.g. no Slurm installed or configured).
std::string submit_sbatch(const SlurmOptions& options, const std::string& script_path);

}  // namespace attnlab
