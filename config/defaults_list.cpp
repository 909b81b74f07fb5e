// Implementation of defaults_list.h.
#include "config/defaults_list.h"

#include <cctype>

#include "common/error.h"
#include "config/input_limits.h"
#include "config/yaml_io.h"

namespace attnlab::config {
namespace {

std::string strip_prefix(std::string& text, const std::string& prefix) {
  if (text.rfind(prefix, 0) == 0 && text.size() > prefix.size() && text[prefix.size()] == ' ') {
    text = text.substr(prefix.size() + 1);
    return prefix;
  }
  return "";
}

// A group path or config name: relative names inside the config directory, never above it.
bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxKeyLength) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '/' ||
          c == '.'))
      return false;
  return name.find("..") == std::string::npos;
}

}  // namespace

std::vector<DefaultsEntry> parse_defaults_list(const YAML::Node& defaults,
                                               const std::string& path) {
  std::vector<DefaultsEntry> entries;
  if (!defaults.IsDefined() || defaults.IsNull()) return entries;
  check_user(defaults.IsSequence(),
             location(path, defaults) + ": 'defaults' must be a list, e.g. [model: gpt, _self_]");
  const std::string hint = " (expected `- group: option`, `- _self_` or `- config_name`)";
  for (const auto& item : defaults) {
    DefaultsEntry entry;
    entry.where = location(path, item);
    if (item.IsScalar()) {
      std::string name = item.Scalar();
      if (name == "_self_") {
        entry.kind = DefaultsEntry::Kind::kSelf;
      } else {
        check_user(valid_name(name), entry.where + ": bad defaults entry '" + name + "'" + hint);
        entry.kind = DefaultsEntry::Kind::kConfig;
        entry.option = name;
      }
      entries.push_back(entry);
      continue;
    }
    check_user(item.IsMap() && item.size() == 1, entry.where + ": bad defaults entry" + hint);
    auto kv = item.begin();
    check_user(kv->first.IsScalar(), entry.where + ": bad defaults entry" + hint);
    std::string key = kv->first.Scalar();
    entry.optional = !strip_prefix(key, "optional").empty();
    entry.is_override = !strip_prefix(key, "override").empty();
    if (!entry.optional && !entry.is_override)
      entry.optional = !strip_prefix(key, "optional").empty();
    size_t at = key.find('@');
    if (at != std::string::npos) {
      entry.package = key.substr(at + 1);
      check_key_path(*entry.package, entry.where + ": the package of '" + key + "'");
      key = key.substr(0, at);
    }
    entry.group = key;
    std::string bare = key[0] == '/' ? key.substr(1) : key;
    check_user(valid_name(bare), entry.where + ": bad config group name '" + key + "'" + hint);
    check_key_path(bare, entry.where + ": config group '" + key + "'");
    const YAML::Node value = kv->second;  // a copy: `kv->` returns a temporary proxy
    if (value.IsNull()) {
      entry.option = std::nullopt;
    } else {
      check_user(value.IsScalar() && valid_option_name(value.Scalar()),
                 entry.where + ": the option of group '" + key +
                     "' must be the name of a config in the group's folder (not a path) or null" +
                     (value.IsSequence() ? " (lists of options are not supported)" : ""));
      entry.option = value.Scalar();
    }
    entries.push_back(entry);
  }
  return entries;
}

}  // namespace attnlab::config
