// `attnlab config [overrides]`: prints the composed config as YAML (with --resolve, interpolations
// resolved); with -m, lists the sweep's jobs with their run dirs and overrides, composing each one
// so a bad job fails here rather than mid-sweep. Either way the groups with typed options
// (cli/option_groups.h) are bound, so a bad option value fails here too.
// `attnlab config --defaults [group]`: every typed option of the group (default: all groups) with
// its type, default and meaning.
#include <yaml-cpp/yaml.h>

#include <iostream>

#include "cli/command.h"
#include "cli/option_groups.h"
#include "common/error.h"
#include "common/suggestions.h"
#include "config/config.h"
#include "config/interpolation.h"
#include "config/run_directory.h"
#include "config/yaml_io.h"
#include "config/yaml_tree.h"
#include "interop/hf/pretrained_config.h"

namespace attnlab {
namespace {

int print_defaults(const CommandArgs& args) {
  check_user(args.overrides.size() <= 1 && !args.multirun && !args.resolve,
             "usage: attnlab config --defaults [group], e.g. --defaults optim or optim/sgd; "
             "groups: " +
                 join_names(option_group_names()));
  const std::vector<OptionGroupDocs> groups =
      args.overrides.empty() ? option_group_docs() : option_group_docs(args.overrides.front());
  std::string last_group;
  for (const auto& group : groups) {
    if (!last_group.empty() && group.group != last_group) std::cout << "\n";
    last_group = group.group;
    if (group.entry.empty())
      std::cout << group.group << ":\n";
    else
      std::cout << group.group << "=" << group.entry << ":\n";
    if (group.options.empty())
      std::cout << "  (no options besides name)\n";
    else
      std::cout << config::format_option_table(group.options, "  ");
  }
  return 0;
}

// Binds the typed groups of `composed`, resolving its interpolations first when the printout
// keeps them (their values are what training would bind).
void check_typed_groups(const YAML::Node& composed, bool resolved) {
  check_option_groups(resolved ? composed : config::resolve_interpolations(composed));
}

}  // namespace

int run_config_command(const CommandArgs& args) {
  if (args.defaults) return print_defaults(args);
  config::ComposeRequest request;
  request.overrides = args.overrides;
  request.config_dir = args.config_dir;
  request.resolve = args.resolve;
  if (!args.multirun) {
    const YAML::Node composed = compose_with_pretrained(request);
    check_typed_groups(composed, args.resolve);
    std::cout << config::to_yaml(composed);
    return 0;
  }
  std::vector<config::SweepJob> jobs = config::expand_sweep(request);
  YAML::Node listing(YAML::NodeType::Sequence);
  for (const auto& job : jobs) {
    YAML::Node composed = config::compose_sweep_job(request, job);
    check_typed_groups(composed, args.resolve);
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
