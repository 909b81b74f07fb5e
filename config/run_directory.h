// The run directory every run gets (run.dir): the composed and resolved config.yaml,
// overrides.yaml, command.txt (the command line) and the source tree's git state (git.txt with
// the commit and `git status --porcelain`, plus git.diff against HEAD when dirty). Calling it
// again for an existing directory (resume) rewrites these files and touches nothing else.
//
// RunDirectoryLock makes a run directory single-writer: an exclusive flock on <run dir>/.lock,
// held while a trainer runs, with the holder's PID in the file so a second process is told who
// holds it. Held locks are released by the kernel when the holder dies, even on kill -9, so the
// lock never needs manual cleanup. The trainer takes the lock, validates everything (config,
// model, existing checkpoints), and only then calls prepare_run_directory.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace attnlab::config {

struct RunDirectory {
  std::string path;
  bool existed = false;  // the directory was there before (a resume)
};

// Uses `run.dir` of the resolved config and the source tree this binary was built from.
RunDirectory prepare_run_directory(const YAML::Node& resolved_config,
                                   const std::vector<std::string>& overrides,
                                   const std::vector<std::string>& argv);
// Same, recording the git state of `source_dir` (tests use a scratch directory).
RunDirectory prepare_run_directory(const YAML::Node& resolved_config,
                                   const std::vector<std::string>& overrides,
                                   const std::vector<std::string>& argv,
                                   const std::string& source_dir);

// `run.dir` of a resolved config; UserError when missing or not resolved.
std::string run_directory_path(const YAML::Node& resolved_config);

class RunDirectoryLock {
 public:
  // Creates `path` when missing, then takes the lock without waiting: UserError naming the
  // directory and the holder's PID when another process holds it.
  explicit RunDirectoryLock(const std::string& path);
  ~RunDirectoryLock();
  RunDirectoryLock(const RunDirectoryLock&) = delete;
  RunDirectoryLock& operator=(const RunDirectoryLock&) = delete;

  const std::string& path() const { return path_; }
  // Removes the `*.tmp` files in the directory and its checkpoints/ folder: with the lock held,
  // every one of them was left by a process that died while writing. Returns their paths.
  std::vector<std::string> remove_stale_temporaries() const;
  // The run started writing: keep the directory on release. Without this call, a directory that
  // the constructor created is removed again (a run that failed validation leaves nothing).
  void keep() { keep_ = true; }

 private:
  std::string path_;
  int fd_ = -1;
  bool created_ = false;
  bool keep_ = false;
};

// <sweep dir>/<job>: where multirun job `job` runs, from `run.sweep_dir` of `config` (resolved
// here; default runs/multirun/${now:%Y-%m-%d_%H-%M-%S}).
std::string multirun_job_dir(const YAML::Node& config, int job);

// The command line as one shell-quoted string.
std::string shell_join(const std::vector<std::string>& argv);

}  // namespace attnlab::config
