// `attnlab config [overrides]`: prints the composed config as YAML (with --resolve, interpolations
// resolved); with -m, lists the sweep's jobs with their run dirs and overrides, composing each one
// so a bad job fails here rather than mid-sweep.
#include <iostream>

#include "trainer/hf/pretrained_config.h"
#include "cli/command.h"
#include "config/config.h"
#include "config/run_directory.h"
#include "config/yaml_io.h"
#include "config/yaml_tree.h"

namespace attnlab {

int run_config_command(const CommandArgs& args) {
  config::ComposeRequest request;
  request.overrides = args.overrides;
  request.config_dir = args.config_dir;
  request.resolve = args.resolve;
  if (!args.multirun) {
    std::cout << config::to_yaml(compose_with_pretrained(request));
    return 0;
  }
  std::vector<config::SweepJob> jobs = config::expand_sweep(request);
  YAML::Node listing(YAML::NodeType::Sequence);
  for (const auto& job : jobs) {
    YAML::Node composed = config::compose_sweep_job(request, job);
    YAML::Node entry(YAML::NodeType::Map);
    entry["job"] = job.index;
    entry["dir"] = config::string_scalar(config::multirun_job_dir(composed, job.index));
    YAML::Node overrides(YAML::NodeType::Sequence);
    for (const auto& o : job.overrides) overrides.push_back(config::string_scalar(o));
    entry["overrides"] = overrides;
    listing.push_back(entry);
  }
  std::cout << "# " << jobs.size() << " job" << (jobs.size() == 1 ? "" : "s") << "\n"
            << config::to_yaml(listing);
  return 0;
}

}  // namespace attnlab
