// Reading and writing config YAML. Loading converts every yaml-cpp exception into a UserError
// with file:line:column, enforces the input limits (input_limits.h: size, depth, alias
// expansion, key length, unclosed quotes) before yaml-cpp builds a tree, and reads Hydra's
// `# @package <pkg>` header. Writing keeps strings that
// look like numbers/bools/null quoted, so a saved config.yaml reloads with the same types.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>

namespace attnlab::config {

struct ConfigFile {
  std::string path;
  YAML::Node content;                  // always a map (an empty file is an empty map)
  std::optional<std::string> package;  // from `# @package X` among the leading comment lines
  size_t nodes = 0;                    // values after alias expansion (input_limits.h)
};

// Loads a config file; UserError on a missing file, a syntax error (file:line:col), an input limit
// (input_limits.h) or a top level that is not a mapping.
ConfigFile load_config_file(const std::string& path);

// Parses YAML text (e.g. a test fixture or saved config) under the same checks; `origin` names it
// in errors.
YAML::Node parse_yaml(const std::string& text, const std::string& origin);

// Block-style YAML for a config tree (lists of scalars in flow style), ending with a newline.
std::string to_yaml(const YAML::Node& node);

// "file:line:col" for a node loaded from `path` (line/col 1-based), or just the path.
std::string location(const std::string& path, const YAML::Node& node);

}  // namespace attnlab::config
