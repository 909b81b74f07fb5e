// sbatch script rendering and submission; see slurm_script.h.
#include "launch/slurm_script.h"

#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdio>
#include <sstream>

#include "common/config_access.h"
#include "common/error.h"
#include "config/options.h"
#include "device/runtime_options.h"

namespace attnlab {

namespace {

// The job name when neither launcher.job_name nor the config's name is set.
const char* const kDefaultJobName = "attnlab";

// An optional Slurm setting that is set (null or "" leave the cluster default).
bool given(const std::optional<std::string>& value) { return value && !value->empty(); }

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

template <class ConfigTree>
SlurmOptions slurm_options_from_config(const ConfigTree& config) {
  // No launcher.name (a config tree of one's own): the launcher group is Slurm's.
  if (cfg::has(config, "launcher.name")) {
    const std::string name = cfg::get<std::string>(config, "launcher.name");
    check_user(name == "slurm",
               "launcher.name: submitting to Slurm needs launcher=slurm, got '" + name + "'");
  }
  SlurmOptions o = config::bind<SlurmOptions>(cfg::find(config, "launcher"), "launcher",
                                              {"launcher 'slurm'", {"name"}});
  if (!o.job_name() && cfg::has(config, "name")) o.job_name(cfg::get<std::string>(config, "name"));
  check_user(!o.time().empty(), "launcher.time: expected a Slurm time like 01:00:00, got ''");
  // A GPU run: every rank takes the GPU of its local rank (device/cuda_device.h), so a node needs
  // a GPU per task, and a cuda run without GPUs would fail only once the job starts.
  const std::string device =
      config::bind_part<RuntimeOptions>(cfg::find(config, "trainer"), "trainer").device();
  if (device.rfind("cuda", 0) == 0) {
    check_user(o.gpus_per_node() > 0, "trainer.device=" + device +
                                          " but launcher.gpus_per_node=0: the job would get no "
                                          "GPU; set launcher.gpus_per_node");
    check_user(device != "cuda" || o.tasks_per_node() <= o.gpus_per_node(),
               "launcher.tasks_per_node=" + std::to_string(o.tasks_per_node()) +
                   " is more than launcher.gpus_per_node=" + std::to_string(o.gpus_per_node()) +
                   ": with trainer.device=cuda each rank needs its own GPU");
  }
  return o;
}

template SlurmOptions slurm_options_from_config(const YAML::Node&);

std::string render_sbatch_script(const SlurmOptions& o, const SlurmJobSpec& spec) {
  std::ostringstream s;
  s << "#!/bin/bash\n";
  s << "# Written by `attnlab submit`; resubmit with: sbatch <this file>\n";
  s << "#SBATCH --job-name=" << shell_quote(o.job_name().value_or(kDefaultJobName)) << "\n";
  s << "#SBATCH --nodes=" << o.nodes() << "\n";
  s << "#SBATCH --ntasks-per-node=" << o.tasks_per_node() << "\n";
  s << "#SBATCH --cpus-per-task=" << o.cpus_per_task() << "\n";
  if (o.gpus_per_node() > 0) s << "#SBATCH --gpus-per-node=" << o.gpus_per_node() << "\n";
  if (given(o.mem())) s << "#SBATCH --mem=" << *o.mem() << "\n";
  s << "#SBATCH --time=" << o.time() << "\n";
  if (given(o.partition())) s << "#SBATCH --partition=" << *o.partition() << "\n";
  if (given(o.account())) s << "#SBATCH --account=" << *o.account() << "\n";
  if (given(o.qos())) s << "#SBATCH --qos=" << *o.qos() << "\n";
  s << "#SBATCH --chdir=" << shell_quote(spec.workdir) << "\n";
  s << "#SBATCH --output=" << shell_quote(spec.output) << "\n";
  // Requeued runs append to the same log instead of truncating it.
  s << "#SBATCH --open-mode=append\n";
  if (o.signal_delay_s() > 0)
    s << "#SBATCH --signal=" << o.signal() << "@" << o.signal_delay_s() << "\n";
  s << (o.requeue() ? "#SBATCH --requeue\n" : "#SBATCH --no-requeue\n");
  if (!spec.array_arguments.empty()) {
    s << "#SBATCH --array=0-" << spec.array_arguments.size() - 1 << "%" << o.array_parallelism()
      << "\n";
  }
  for (const auto& extra : o.sbatch_extra()) s << "#SBATCH " << extra << "\n";
  s << "\nset -euo pipefail\n";
  s << "echo \"[attnlab] job ${SLURM_JOB_ID:-}${SLURM_ARRAY_TASK_ID:+ (array task "
       "$SLURM_ARRAY_TASK_ID)} on $(hostname) at $(date -Is), restart "
       "${SLURM_RESTART_COUNT:-0}\"\n";
  for (const auto& line : o.setup()) s << line << "\n";
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
  std::vector<std::string> srun = {"srun", "--mpi=" + o.mpi()};
  srun.insert(srun.end(), o.srun_args().begin(), o.srun_args().end());
  s << quoted_command(srun) << " " << quoted_command(spec.program) << " \"${ARGS[@]}\"\n";
  return s.str();
}

std::string submit_sbatch(const SlurmOptions& options, const std::string& script_path) {
  const std::string command =
      shell_quote(options.sbatch()) + " --parsable " + shell_quote(script_path) + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  check_user(pipe != nullptr, "cannot run " + options.sbatch());
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
