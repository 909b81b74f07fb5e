// The local sweep launcher and the -m dispatch; see local_sweep.h.
#include "launch/local_sweep.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "common/config_access.h"
#include "common/error.h"
#include "common/subprocess.h"
#include "launch/slurm_submit.h"
#include "launch/sweep_summary.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

struct Running {
  size_t job = 0;  // index into the jobs vector
  std::chrono::steady_clock::time_point start;
};

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& part : parts) out += (out.empty() ? "" : " ") + part;
  return out;
}

}  // namespace

bool job_completed(const std::string& job_dir) {
  return fs::exists(fs::path(job_dir) / "result.json") || fs::exists(fs::path(job_dir) / "DONE");
}

std::string resolve_sweep_dir(const config::ComposeRequest& request,
                              const std::vector<config::SweepJob>& jobs) {
  check_user(!jobs.empty(), "the sweep has no jobs");
  // compose_sweep_job sets run.dir to <run.sweep_dir>/<index>, resolving ${now:...} once here.
  YAML::Node first = config::compose_sweep_job(request, jobs.front());
  const fs::path job_dir = cfg::get<std::string>(first, "run.dir");
  return fs::absolute(job_dir).lexically_normal().parent_path().string();
}

void write_multirun_yaml(const std::string& sweep_dir, const std::vector<config::SweepJob>& jobs,
                         const std::vector<std::string>& command_line,
                         const std::string& launcher) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "command" << YAML::Value << YAML::Flow << command_line;
  out << YAML::Key << "launcher" << YAML::Value << launcher;
  out << YAML::Key << "sweep_dir" << YAML::Value << sweep_dir;
  out << YAML::Key << "jobs" << YAML::Value << YAML::BeginSeq;
  for (const auto& job : jobs) {
    out << YAML::BeginMap;
    out << YAML::Key << "index" << YAML::Value << job.index;
    out << YAML::Key << "dir" << YAML::Value << std::to_string(job.index);
    out << YAML::Key << "overrides" << YAML::Value << YAML::Flow << job.overrides;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  fs::create_directories(sweep_dir);
  std::ofstream file(fs::path(sweep_dir) / "multirun.yaml");
  file << "# attnlab multirun: one entry per job; `attnlab summarize " << sweep_dir
       << "` aggregates results\n"
       << out.c_str() << "\n";
  check_user(file.good(), "cannot write " + (fs::path(sweep_dir) / "multirun.yaml").string());
}

int run_local_sweep(const std::vector<config::SweepJob>& jobs, const LocalSweepOptions& options) {
  check_user(options.launcher.parallel() >= 1, "launcher.parallel: expected a number >= 1, got " +
                                                   std::to_string(options.launcher.parallel()));
  check_user(!options.sweep_dir.empty(), "run_local_sweep: empty sweep dir");
  const std::string executable =
      options.executable.empty() ? current_executable() : options.executable;
  fs::create_directories(options.sweep_dir);

  std::vector<size_t> todo;
  int skipped = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const fs::path dir = fs::path(options.sweep_dir) / std::to_string(jobs[i].index);
    if (job_completed(dir.string())) {
      ++skipped;
      continue;
    }
    todo.push_back(i);
  }
  if (!options.quiet) {
    std::cout << "[sweep] " << jobs.size() << " jobs in " << options.sweep_dir << ": " << skipped
              << " already complete, " << todo.size() << " to run, " << options.launcher.parallel()
              << " at a time" << std::endl;
  }

  std::map<pid_t, Running> running;
  size_t next = 0;
  int failed = 0;
  while (next < todo.size() || !running.empty()) {
    while (next < todo.size() &&
           static_cast<int64_t>(running.size()) < options.launcher.parallel()) {
      const config::SweepJob& job = jobs[todo[next]];
      const fs::path dir = fs::path(options.sweep_dir) / std::to_string(job.index);
      fs::create_directories(dir);
      std::vector<std::string> argv = {executable};
      argv.insert(argv.end(), options.command.begin(), options.command.end());
      argv.insert(argv.end(), job.overrides.begin(), job.overrides.end());
      argv.push_back("run.dir=" + dir.string());
      const pid_t pid = spawn_process(argv, (dir / "job.log").string());
      running[pid] = {todo[next], std::chrono::steady_clock::now()};
      if (!options.quiet)
        std::cout << "[sweep] job " << job.index << " started: " << join(job.overrides)
                  << std::endl;
      ++next;
    }
    const ExitedProcess exited = wait_any_child();
    auto it = running.find(exited.pid);
    if (it == running.end()) continue;  // not one of ours
    const config::SweepJob& job = jobs[it->second.job];
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second.start).count();
    const fs::path dir = fs::path(options.sweep_dir) / std::to_string(job.index);
    // A job counts as done only when it wrote its marker (a clean stop, e.g. pre-emption, exits
    // 0 without one and stays to do).
    const bool ok = exited.exit_code == 0 && job_completed(dir.string());
    if (!ok) ++failed;
    if (!options.quiet) {
      std::cout << "[sweep] job " << job.index << (ok ? " done" : " FAILED") << " (exit "
                << exited.exit_code << ", " << static_cast<int>(seconds) << " s)"
                << (ok ? "" : "; log: " + (dir / "job.log").string()) << std::endl;
    }
    running.erase(it);
  }
  if (options.launcher.summarize()) {
    try {
      SweepSummary summary = summarize_sweep(options.sweep_dir);
      if (!options.quiet)
        std::cout << "[sweep] summary: " << summary.markdown_path << "\n" << summary.markdown;
    } catch (const UserError& error) {
      std::cerr << "[sweep] no summary: " << error.what() << "\n";
    }
  }
  if (!options.quiet && failed > 0)
    std::cout << "[sweep] " << failed << " job(s) failed; run the same command again (same "
              << "run.sweep_dir) to retry only those" << std::endl;
  return failed;
}

int run_multirun(const CommandArgs& args, const std::string& command) {
  config::ComposeRequest request;
  request.overrides = args.overrides;
  request.config_dir = args.config_dir;
  const std::vector<config::SweepJob> jobs = config::expand_sweep(request);
  YAML::Node first = config::compose_sweep_job(request, jobs.front());
  const LauncherOptions launcher = launcher_options(first);
  if (std::holds_alternative<SlurmOptions>(launcher)) return submit_to_slurm(args, command);

  const std::string sweep_dir = resolve_sweep_dir(request, jobs);
  if (args.dry_run) {  // the jobs and where they would run; nothing is written or started
    std::cout << "dry run: " << jobs.size() << " job" << (jobs.size() == 1 ? "" : "s")
              << " of `attnlab " << command << "` would run in " << sweep_dir << "/<index>\n";
    for (const auto& job : jobs) {
      std::cout << "  " << job.index << ":";
      for (const auto& item : job.overrides) std::cout << " " << item;
      std::cout << "\n";
    }
    return 0;
  }
  std::vector<std::string> command_line = args.argv;
  if (command_line.empty()) {
    command_line = {"attnlab", command, "-m"};
    command_line.insert(command_line.end(), args.overrides.begin(), args.overrides.end());
  }
  write_multirun_yaml(sweep_dir, jobs, command_line, "local");

  LocalSweepOptions options;
  options.sweep_dir = sweep_dir;
  options.command = {command};
  if (args.config_dir) {
    options.command.push_back("--config-dir");
    options.command.push_back(*args.config_dir);
  }
  options.launcher = std::get<LocalLauncherOptions>(launcher);
  return run_local_sweep(jobs, options) == 0 ? 0 : 1;
}

}  // namespace attnlab
