// Slurm batch scripts from `configs/launcher/slurm.yaml` (launcher.*): resources, pre-emption
// signal, requeue, environment setup lines and an `srun` line that starts every MPI rank of
// `attnlab`. A sweep becomes one job array (`--array=0-N%parallelism`) whose tasks pick their
// overrides by SLURM_ARRAY_TASK_ID.
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/option_schema.h"

namespace attnlab {

// launcher=slurm (configs/launcher/slurm.yaml holds the same values; a test keeps them equal).
struct SlurmOptions {
  TORCH_ARG(int64_t, nodes) = 1;
  TORCH_ARG(int64_t, tasks_per_node) = 1;
  TORCH_ARG(int64_t, cpus_per_task) = 1;
  TORCH_ARG(int64_t, gpus_per_node) = 0;
  TORCH_ARG(std::optional<std::string>, mem) = std::nullopt;
  TORCH_ARG(std::string, time) = "01:00:00";
  TORCH_ARG(std::optional<std::string>, partition) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, account) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, qos) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, job_name) = std::nullopt;
  TORCH_ARG(int64_t, array_parallelism) = 16;
  TORCH_ARG(std::string, signal) = "USR1";
  TORCH_ARG(int64_t, signal_delay_s) = 120;
  TORCH_ARG(bool, requeue) = true;
  TORCH_ARG(std::string, mpi) = "pmix";
  TORCH_ARG(std::vector<std::string>, sbatch_extra) = std::vector<std::string>{};
  TORCH_ARG(std::vector<std::string>, setup) = std::vector<std::string>{};
  TORCH_ARG(std::vector<std::string>, srun_args) = std::vector<std::string>{};
  TORCH_ARG(std::string, sbatch) = "sbatch";
  TORCH_ARG(bool, summarize) = true;

 public:
  template <class V>
  void visit(V& v) {
    v("nodes", nodes(), "nodes of the job (#SBATCH --nodes)", config::at_least(1));
    v("tasks_per_node", tasks_per_node(), "MPI ranks per node (data-parallel replicas)",
      config::at_least(1));
    v("cpus_per_task", cpus_per_task(), "threads per rank (OMP_NUM_THREADS)", config::at_least(1));
    v("gpus_per_node", gpus_per_node(), "GPUs per node (#SBATCH --gpus-per-node); 0: none",
      config::at_least(0));
    v("mem", mem(), "memory per node, e.g. 16G; null: the cluster default");
    v("time", time(), "time limit, e.g. 01:00:00");
    v("partition", partition(), "Slurm partition; null: the cluster default");
    v("account", account(), "Slurm account; null: the cluster default");
    v("qos", qos(), "Slurm QOS; null: the cluster default");
    v("job_name", job_name(), "job name; null: the run's name (config key name)");
    v("array_parallelism", array_parallelism(),
      "a sweep's job array runs at most this many tasks at once (--array=0-N%this)",
      config::at_least(1));
    v("signal", signal(),
      "signal Slurm sends signal_delay_s before the time limit (checkpoint, "
      "requeue)");
    v("signal_delay_s", signal_delay_s(), "seconds before the time limit; 0: no signal",
      config::at_least(0));
    v("requeue", requeue(), "#SBATCH --requeue (else --no-requeue)");
    v("mpi", mpi(), "srun --mpi=<this>; pmi2 or none on clusters without PMIx");
    v("sbatch_extra", sbatch_extra(), "extra #SBATCH options, e.g. [--constraint=a100]");
    v("setup", setup(), "shell lines before srun, e.g. [module load openmpi]");
    v("srun_args", srun_args(), "extra srun options");
    v("sbatch", sbatch(), "the submit program");
    v("summarize", summarize(),
      "no effect with Slurm (a job array writes no summary; run attnlab summarize <sweep dir>); "
      "accepted so launcher.summarize is valid for either launcher");
  }
};

// Binds the launcher group (configs/launcher/slurm.yaml) of a composed config into SlurmOptions
// (config/options.h): a key of another launcher, a wrong type or value is one UserError naming
// the dotted key, and so is launcher.name other than slurm. Also checks the resources against
// trainer.device (a cuda run needs a GPU per rank). A null job_name becomes the config's `name`.
// Defined for YAML::Node.
template <class ConfigTree>
SlurmOptions slurm_options_from_config(const ConfigTree& config);

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
