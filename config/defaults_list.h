// One entry of a config's `defaults:` list, parsed and validated (with file:line:col in errors).
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <vector>

namespace attnlab::config {

struct DefaultsEntry {
  enum class Kind { kSelf, kGroup, kConfig };
  Kind kind = Kind::kGroup;
  std::string group;                   // kGroup: as written, without "optional"/"override"/"@pkg"
  std::optional<std::string> option;   // kGroup: option name, nullopt for null; kConfig: name
  std::optional<std::string> package;  // from group@package
  bool optional = false;
  bool is_override = false;
  std::string where;  // file:line:col of the entry
};

// Parses `defaults` (a sequence, or undefined for none) of the file at `path`.
std::vector<DefaultsEntry> parse_defaults_list(const YAML::Node& defaults, const std::string& path);

}  // namespace attnlab::config
