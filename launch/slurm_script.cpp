// sbatch script rendering and submission; see slurm_script.h.
#include "launch/slurm_script.h"

#include <array>
#include <cstdio>
#include <sstream>

#include "common/config_access.h"
#include "common/error.h"

namespace attnlab {

namespace {

std::string optional_string(const YAML::Node& config, const std::string& key) {
  return cfg::get_or<std::string>(config, key, "");
}

std::vector<std::string> string_list(const YAML::Node& config, const std::string& key) {
  return cfg::get_or<std::vector<std::string>>(config, key, {});
}

void check_positive(int value, const std::string& key) {
  check_user(value >= 1,
             "config key '" + key + "': expected a positive integer, got " + std::to_string(value));
}

std::string quoted_command(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& word : words) out += (out.empty() ? "" : " ") + shell_quote(word);
  return out;
}

}  // namespace

std::string shell_quote(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                              "0123456789_-+=./:,@%") == std::string::npos)
    return word;
  std::string out = "'";
  for (char c : word) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

SlurmOptions slurm_options_from_config(const YAML::Node& config) {
  SlurmOptions o;
  o.nodes = cfg::get_or<int>(config, "launcher.nodes", o.nodes);
  o.tasks_per_node = cfg::get_or<int>(config, "launcher.tasks_per_node", o.tasks_per_node);
  o.cpus_per_task = cfg::get_or<int>(config, "launcher.cpus_per_task", o.cpus_per_task);
  o.gpus_per_node = cfg::get_or<int>(config, "launcher.gpus_per_node", o.gpus_per_node);
  o.mem = optional_string(config, "launcher.mem");
  o.time = cfg::get_or<std::string>(config, "launcher.time", o.time);
  o.partition = optional_string(config, "launcher.partition");
  o.account = optional_string(config, "launcher.account");
  o.qos = optional_string(config, "launcher.qos");
  o.job_name = cfg::get_or<std::string>(config, "launcher.job_name",
                                        cfg::get_or<std::string>(config, "name", o.job_name));
  o.array_parallelism = cfg::get_or<int>(config, "launcher.array_parallelism", o.array_parallelism);
  o.signal = cfg::get_or<std::string>(config, "launcher.signal", o.signal);
  o.signal_delay_s = cfg::get_or<int>(config, "launcher.signal_delay_s", o.signal_delay_s);
  o.requeue = cfg::get_or<bool>(config, "launcher.requeue", o.requeue);
  o.mpi = cfg::get_or<std::string>(config, "launcher.mpi", o.mpi);
  o.sbatch_extra = string_list(config, "launcher.sbatch_extra");
  o.setup = string_list(config, "launcher.setup");
  o.srun_args = string_list(config, "launcher.srun_args");
  o.sbatch = cfg::get_or<std::string>(config, "launcher.sbatch", o.sbatch);
  check_positive(o.nodes, "launcher.nodes");
  check_positive(o.tasks_per_node, "launcher.tasks_per_node");
  check_positive(o.cpus_per_task, "launcher.cpus_per_task");
  check_positive(o.array_parallelism, "launcher.array_parallelism");
  check_user(o.gpus_per_node >= 0, "config key 'launcher.gpus_per_node': expected >= 0");
  // A GPU run: every rank takes the GPU of its local rank (device/cuda_device.h), so a node needs
  // a GPU per task, and a cuda run without GPUs would fail only once the job starts.
  const std::string device = cfg::get_or<std::string>(config, "trainer.device", "cpu");
  if (device.rfind("cuda", 0) == 0) {
    check_user(o.gpus_per_node > 0, "trainer.device=" + device +
                                        " but launcher.gpus_per_node=0: the job would get no "
                                        "GPU; set launcher.gpus_per_node");
    check_user(device != "cuda" || o.tasks_per_node <= o.gpus_per_node,
               "launcher.tasks_per_node=" + std::to_string(o.tasks_per_node) +
                   " is more than launcher.gpus_per_node=" + std::to_string(o.gpus_per_node) +
                   ": with trainer.device=cuda each rank needs its own GPU");
  }
  check_user(o.signal_delay_s >= 0, "config key 'launcher.signal_delay_s': expected >= 0");
  check_user(!o.time.empty(), "config key 'launcher.time': expected a Slurm time like 01:00:00");
  return o;
}

std::string render_sbatch_script(const SlurmOptions& o, const SlurmJobSpec& spec) {
  std::ostringstream s;
  s << "#!/bin/bash\n";
  s << "# Written by `attnlab submit`; resubmit with: sbatch <this file>\n";
  s << "#SBATCH --job-name=" << shell_quote(o.job_name) << "\n";
  s << "#SBATCH --nodes=" << o.nodes << "\n";
  s << "#SBATCH --ntasks-per-node=" << o.tasks_per_node << "\n";
  s << "#SBATCH --cpus-per-task=" << o.cpus_per_task << "\n";
  if (o.gpus_per_node > 0) s << "#SBATCH --gpus-per-node=" << o.gpus_per_node << "\n";
  if (!o.mem.empty()) s << "#SBATCH --mem=" << o.mem << "\n";
  s << "#SBATCH --time=" << o.time << "\n";
  if (!o.partition.empty()) s << "#SBATCH --partition=" << o.partition << "\n";
  if (!o.account.empty()) s << "#SBATCH --account=" << o.account << "\n";
  if (!o.qos.empty()) s << "#SBATCH --qos=" << o.qos << "\n";
  s << "#SBATCH --chdir=" << shell_quote(spec.workdir) << "\n";
  s << "#SBATCH --output=" << shell_quote(spec.output) << "\n";
  // Requeued runs append to the same log instead of truncating it.
  s << "#SBATCH --open-mode=append\n";
  if (o.signal_delay_s > 0) s << "#SBATCH --signal=" << o.signal << "@" << o.signal_delay_s << "\n";
  s << (o.requeue ? "#SBATCH --requeue\n" : "#SBATCH --no-requeue\n");
  if (!spec.array_arguments.empty()) {
    s << "#SBATCH --array=0-" << spec.array_arguments.size() - 1 << "%" << o.array_parallelism
      << "\n";
  }
  for (const auto& extra : o.sbatch_extra) s << "#SBATCH " << extra << "\n";
  s << "\nset -euo pipefail\n";
  s << "echo \"[attnlab] job ${SLURM_JOB_ID:-}${SLURM_ARRAY_TASK_ID:+ (array task "
       "$SLURM_ARRAY_TASK_ID)} on $(hostname) at $(date -Is), restart "
       "${SLURM_RESTART_COUNT:-0}\"\n";
  for (const auto& line : o.setup) s << line << "\n";
  // Each rank runs one thread per allocated CPU.
  s << "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}\n";

  if (spec.array_arguments.empty()) {
    s << "ARGS=(" << quoted_command(spec.arguments) << ")\n";
  } else {
    s << "case \"$SLURM_ARRAY_TASK_ID\" in\n";
    for (size_t i = 0; i < spec.array_arguments.size(); ++i)
      s << "  " << i << ") ARGS=(" << quoted_command(spec.array_arguments[i]) << ") ;;\n";
    s << "  *) echo \"unknown array task $SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;\n";
    s << "esac\n";
  }
  std::vector<std::string> srun = {"srun", "--mpi=" + o.mpi};
  srun.insert(srun.end(), o.srun_args.begin(), o.srun_args.end());
  s << quoted_command(srun) << " " << quoted_command(spec.program) << " \"${ARGS[@]}\"\n";
  return s.str();
}

std::string submit_sbatch(const SlurmOptions& options, const std::string& script_path) {
  const std::string command =
      shell_quote(options.sbatch) + " --parsable " + shell_quote(script_path) + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  check_user(pipe != nullptr, "cannot run " + options.sbatch);
  std::string output;
  std::array<char, 512> chunk{};
  size_t n = 0;
  while ((n = fread(chunk.data(), 1, chunk.size(), pipe)) > 0) output.append(chunk.data(), n);
  const int status = pclose(pipe);
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  check_user(status == 0, "sbatch failed for " + script_path + ": " + output);
  // --parsable prints "<id>" or "<id>;<cluster>"; the last line is the id.
  std::string id = output.substr(output.find_last_of('\n') + 1);
  id = id.substr(0, id.find(';'));
  check_user(!id.empty(), "sbatch printed no job id for " + script_path);
  return id;
}

}  // namespace attnlab
