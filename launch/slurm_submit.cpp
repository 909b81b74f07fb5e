// `attnlab submit` / `launcher=slurm`: compose, pin directories, write and submit the sbatch
// script; see slurm_submit.h.
#include "launch/slurm_submit.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "common/config_access.h"
#include "common/error.h"
#include "common/subprocess.h"
#include "config/config.h"
#include "interop/hf/pretrained_config.h"
#include "launch/local_sweep.h"
#include "launch/slurm_script.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

bool has_launcher_override(const std::vector<std::string>& overrides) {
  for (const auto& item : overrides) {
    std::string key = item.substr(0, item.find('='));
    while (!key.empty() && key[0] == '+') key.erase(0, 1);
    if (key == "launcher") return true;
  }
  return false;
}

std::string absolute(const std::string& path) {
  return fs::absolute(path).lexically_normal().string();
}

}  // namespace

int submit_to_slurm(const CommandArgs& args, const std::string& command) {
  config::ComposeRequest request;
  request.overrides = args.overrides;
  if (!has_launcher_override(request.overrides))
    request.overrides.insert(request.overrides.begin(), "launcher=slurm");
  request.config_dir = args.config_dir;

  SlurmJobSpec spec;
  spec.workdir = fs::current_path().string();
  spec.program = {current_executable(), command};
  if (args.config_dir) {
    spec.program.push_back("--config-dir");
    spec.program.push_back(absolute(*args.config_dir));
  }

  SlurmOptions options;
  std::string target_dir;  // where the script goes: the run dir or the sweep dir
  std::vector<config::SweepJob> jobs;
  if (args.multirun) {
    jobs = config::expand_sweep(request);
    options = slurm_options_from_config(config::compose_sweep_job(request, jobs.front()));
    target_dir = resolve_sweep_dir(request, jobs);
    for (const auto& job : jobs) {
      std::vector<std::string> task_args = job.overrides;
      task_args.push_back("run.dir=" + (fs::path(target_dir) / std::to_string(job.index)).string());
      spec.array_arguments.push_back(task_args);
    }
    // Slurm does not create log directories: each task logs into its (pre-created) job dir.
    spec.output = target_dir + "/%a/slurm-%A_%a.out";
  } else {
    YAML::Node config = compose_with_pretrained(request);
    options = slurm_options_from_config(config);
    // Pin the resolved run dir (it may hold ${now:...}) so a requeued job resumes in it.
    target_dir = absolute(cfg::get<std::string>(config, "run.dir"));
    spec.arguments = request.overrides;
    spec.arguments.push_back("run.dir=" + target_dir);
    spec.output = target_dir + "/slurm-%j.out";
  }
  const std::string script = render_sbatch_script(options, spec);
  if (args.dry_run) {
    std::cout << script;
    return 0;
  }

  fs::create_directories(target_dir);
  if (args.multirun) {
    for (const auto& job : jobs)
      fs::create_directories(fs::path(target_dir) / std::to_string(job.index));
    std::vector<std::string> command_line = args.argv;
    if (command_line.empty()) {
      command_line = {"attnlab", "submit", "-m"};
      command_line.insert(command_line.end(), args.overrides.begin(), args.overrides.end());
    }
    write_multirun_yaml(target_dir, jobs, command_line, "slurm");
  }
  const std::string script_path = (fs::path(target_dir) / "submit.sbatch").string();
  {
    std::ofstream file(script_path);
    file << script;
    check_user(file.good(), "cannot write " + script_path);
  }
  const std::string job_id = submit_sbatch(options, script_path);
  std::cout << job_id << "\n";
  std::cerr << "submitted "
            << (args.multirun ? "job array of " + std::to_string(jobs.size()) + " tasks"
                              : std::string("job"))
            << " " << job_id << "; script " << script_path << "; logs in " << target_dir << "\n";
  return 0;
}

}  // namespace attnlab
