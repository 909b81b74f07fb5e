// The table of converted config groups (option_groups.h): each registry's entries with their
// option docs, and one call binding them all.
#include "trainer/option_groups.h"

#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "common/suggestions.h"
#include "config/options.h"
#include "trainer/grad_early_stop.h"
#include "trainer/lr_schedule.h"
#include "trainer/optimizer.h"
#include "trainer/trainer_options.h"

namespace attnlab {
namespace {

// The docs of every entry of a registry whose specs hold their options' defaults (a variant).
template <class Spec>
void add_registry(std::vector<OptionGroupDocs>& out, const std::string& group,
                  const Registry<Spec>& registry) {
  for (const auto& name : registry.names()) {
    std::vector<config::OptionDoc> docs =
        std::visit([](const auto& defaults) { return config::option_docs(defaults); },
                   registry.get(name).defaults);
    out.push_back({group, name, docs});
  }
}

}  // namespace

std::vector<OptionGroupDocs> option_group_docs() {
  std::vector<OptionGroupDocs> out;
  add_registry(out, "optim", optimizer_registry());
  add_registry(out, "scheduler", schedule_registry());
  out.push_back({"trainer", "", config::option_docs<TrainerOptions>()});
  return out;
}

std::vector<std::string> option_group_names() {
  std::vector<std::string> names;
  for (const auto& docs : option_group_docs())
    if (names.empty() || names.back() != docs.group) names.push_back(docs.group);
  return names;
}

std::vector<OptionGroupDocs> option_group_docs(const std::string& group) {
  const size_t slash = group.find('/');
  const std::string name = group.substr(0, slash);
  const std::string entry = slash == std::string::npos ? "" : group.substr(slash + 1);
  std::vector<OptionGroupDocs> out;
  std::vector<std::string> entries;
  for (auto& docs : option_group_docs()) {
    if (docs.group != name) continue;
    entries.push_back(docs.entry);
    if (entry.empty() || docs.entry == entry) out.push_back(std::move(docs));
  }
  const std::vector<std::string> groups = option_group_names();
  check_user(!entries.empty(), "unknown group '" + name + "' for --defaults; groups with typed " +
                                   "options: " + join_names(groups) + did_you_mean(name, groups));
  check_user(!out.empty(), "unknown entry '" + entry + "' of group '" + name + "'; its entries: " +
                               join_names(entries) + did_you_mean(entry, entries));
  return out;
}

template <class ConfigTree>
void check_option_groups(const ConfigTree& config) {
  optimizer_options(config);
  schedule_options(config);  // not the run length: a config tree of one's own may have none
  TrainerOptions::from_config(config);
}

template void check_option_groups(const YAML::Node&);

}  // namespace attnlab
