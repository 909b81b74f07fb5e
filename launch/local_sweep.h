// The local launcher (`launcher=local`): runs the jobs of a -m sweep as child processes of the
// same `attnlab` binary, `launcher.parallel` at a time, job k in <sweep dir>/<k> (its overrides
// plus `run.dir=<sweep dir>/<k>`), with its console output in <sweep dir>/<k>/job.log.
//
// Resumable: a job whose dir holds result.json (written by `attnlab train` at the very end) is
// skipped, so re-running the same sweep with a stable sweep dir (`run.sweep_dir=...`) only runs
// what is missing or failed. multirun.yaml records the sweep; summary.{csv,md,png} aggregate it.
#pragma once

#include <string>
#include <vector>

#include "command_line/command_line.h"
#include "config/config.h"
#include "launch/launcher_options.h"

namespace attnlab {

struct LocalSweepOptions {
  std::string sweep_dir;                         // jobs run in <sweep_dir>/<index>
  std::string executable;                        // default: this executable
  std::vector<std::string> command = {"train"};  // argv after the executable, before overrides
  LocalLauncherOptions launcher;                 // launcher.parallel, launcher.summarize
  bool quiet = false;                            // no progress lines on stdout
};

// Runs every job not yet complete; returns the number of failed jobs (0 = all succeeded).
int run_local_sweep(const std::vector<config::SweepJob>& jobs, const LocalSweepOptions& options);

// True when the job dir holds a completion marker (result.json or DONE).
bool job_completed(const std::string& job_dir);

// Writes <sweep_dir>/multirun.yaml: the command, the launcher, and each job's index, dir and
// overrides (what `attnlab summarize` groups by).
void write_multirun_yaml(const std::string& sweep_dir, const std::vector<config::SweepJob>& jobs,
                         const std::vector<std::string>& command_line, const std::string& launcher);

// The sweep dir of a -m request, resolved once (the default holds ${now:...}, so every job must
// get this one value rather than resolving it again).
std::string resolve_sweep_dir(const config::ComposeRequest& request,
                              const std::vector<config::SweepJob>& jobs);

// `attnlab <command> -m ...` with the configured launcher: expands the sweep, then runs it locally
// (launcher.name=local) or submits one Slurm job array (launcher.name=slurm). For cmd_train.
int run_multirun(const CommandArgs& args, const std::string& command);

}  // namespace attnlab
