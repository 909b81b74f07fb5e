// Implementation of group_lists.h: mapping entries of a group list become the named option's
// full node (the run's composed group when it is the chosen option, else the option's file) with
// the entry's keys on top, checked like `key=value` overrides.
#include "config/group_lists.h"

#include "common/error.h"
#include "common/suggestions.h"
#include "config/override_apply.h"
#include "config/search_path.h"
#include "config/yaml_io.h"
#include "config/yaml_tree.h"

namespace attnlab::config {
namespace {

std::vector<std::string> map_keys(const YAML::Node& map) {
  std::vector<std::string> keys;
  for (const auto& item : map) keys.push_back(item.first.Scalar());
  return keys;
}

// The option's own keys: the run's composed group node when the run chose this option, else the
// option file (its `defaults:` list, if any, is not a key).
YAML::Node option_node(const YAML::Node& config, const GroupList& list, const std::string& option,
                       const std::string& entry, const std::vector<std::string>& path,
                       const std::vector<std::string>& options) {
  const YAML::Node chosen = find_node(config, list.group);
  if (chosen.IsMap() && chosen["name"] && chosen["name"].IsScalar() &&
      chosen["name"].Scalar() == option)
    return deep_copy(chosen);
  const auto file = find_config_file(path, list.group + "/" + option);
  if (!file) {
    throw UserError(entry + ".name: unknown " + list.group + " '" + option +
                    "'; expected one of: " + join_names(options) + did_you_mean(option, options));
  }
  YAML::Node content = deep_copy(load_config_file(*file).content);
  content.remove("defaults");
  return content;
}

}  // namespace

const std::vector<GroupList>& group_lists() {
  static const std::vector<GroupList> lists = {{"model.attention_per_layer", "attention"}};
  return lists;
}

void complete_group_list(YAML::Node& config, const GroupList& list,
                         const std::vector<std::string>& path,
                         const std::map<std::string, std::vector<std::string>>& groups) {
  YAML::Node items = find_node(config, list.key);
  if (!items.IsSequence()) return;  // absent, null, or the compact "mha*3,moh" text
  const auto found = groups.find(list.group);
  const std::vector<std::string> options =
      found == groups.end() ? std::vector<std::string>{} : found->second;
  YAML::Node completed(YAML::NodeType::Sequence);
  for (size_t i = 0; i < items.size(); ++i) {
    const YAML::Node item = items[i];
    const std::string entry = list.key + "[" + std::to_string(i) + "]";
    if (!item.IsMap()) {
      completed.push_back(deep_copy(item));
      continue;
    }
    const YAML::Node name = item["name"];
    check_user(name && name.IsScalar() && !name.Scalar().empty(),
               entry + ": a mapping entry needs name: <" + list.group +
                   "> (e.g. {name: " + (options.empty() ? std::string("...") : options.back()) +
                   ", ...}); expected one of: " + join_names(options));
    YAML::Node layer = option_node(config, list, name.Scalar(), entry, path, options);
    const std::vector<std::string> keys = map_keys(layer);
    for (const auto& field : item) {
      const std::string key = field.first.Scalar();
      if (key == "name") continue;
      const YAML::Node existing = child_node(layer, key);
      if (!existing) {
        throw UserError(entry + "." + key + ": " + list.group + " '" + name.Scalar() +
                        "' has no option '" + key + "'; its options: " + join_names(keys) +
                        did_you_mean(key, keys));
      }
      const std::optional<YAML::Node> value = value_for_default(existing, field.second);
      if (!value) {
        throw UserError(entry + "." + key + ": expected " + kind_name(value_kind(existing)) +
                        " like " + list.group + "/" + name.Scalar() + "'s default '" +
                        shown_value(existing) + "', got " + kind_name(value_kind(field.second)) +
                        " '" + shown_value(field.second) + "'");
      }
      layer[key] = deep_copy(*value);
    }
    completed.push_back(layer);
  }
  set_node(config, list.key, completed);
}

}  // namespace attnlab::config
