// The run directory every run gets (run.dir): the composed and resolved config.yaml,
// overrides.yaml, command.txt (the command line) and the source tree's git state (git.txt with
// the commit and `git status --porcelain`, plus git.diff against HEAD when dirty). Calling it
// again for an existing directory (resume) rewrites these files and touches nothing else.
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

// <sweep dir>/<job>: where multirun job `job` runs, from `run.sweep_dir` of `config` (resolved
// here; default runs/multirun/${now:%Y-%m-%d_%H-%M-%S}).
std::string multirun_job_dir(const YAML::Node& config, int job);

// The command line as one shell-quoted string.
std::string shell_join(const std::vector<std::string>& argv);

}  // namespace attnlab::config
