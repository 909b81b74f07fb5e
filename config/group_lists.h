// Lists whose entries are options of a config group, each with its own keys on top: the
// hybrid-stack list `model.attention_per_layer: [mha, {name: moh, routed_k: 2}, ...]` names an
// option of the `attention` group per layer. A mapping entry is completed at composition time, so
// the saved config.yaml records every value each layer was built with:
//   * its `name` must be an option of the group (attention/<name>.yaml on the search path);
//   * its other keys must be keys of that option, with values of the option's types (the rules of
//     `key=value` overrides, override_apply.h);
//   * the result is the group's composed node when `name` is the option the run chose (so the
//     `attention.*` overrides of the command line reach those layers too), otherwise the
//     option's file, with the entry's keys on top.
// Scalar entries ("moh", "mha*3,moh") are left as they are: the module's defaults. Errors are one
// UserError naming the entry ("model.attention_per_layer[1].routd_k") and what was expected.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

namespace attnlab::config {

struct GroupList {
  std::string key;    // dotted key of the list, "model.attention_per_layer"
  std::string group;  // the config group its entries name, "attention"
};

// The lists attnlab's configs declare (one today: model.attention_per_layer -> attention).
const std::vector<GroupList>& group_lists();

// Completes the mapping entries of `list` in `config` (in place); `path` is the config search
// path, `groups` the discovered groups (search_path.h). A missing or null list is left alone.
void complete_group_list(YAML::Node& config, const GroupList& list,
                         const std::vector<std::string>& path,
                         const std::map<std::string, std::vector<std::string>>& groups);

}  // namespace attnlab::config
