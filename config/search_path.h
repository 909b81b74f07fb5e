// Where configs are found. The primary config dir is, in order of precedence:
//   1. --config-dir DIR (ComposeRequest::config_dir)
//   2. $ATTNLAB_CONFIG_DIR
//   3. ./configs, when it exists
//   4. <source tree>/configs (baked in at compile time)
// followed by every directory in $ATTNLAB_CONFIG_PATH (colon-separated), in order. A config or
// group option is looked up in each directory in turn and the FIRST match wins (Hydra's rule), so
// extra directories add new groups and new options but do not shadow shipped ones.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace attnlab::config {

std::vector<std::string> search_path(const std::optional<std::string>& config_dir);

// group path ("model", "db/mysql") -> sorted option names, merged over all directories. A group
// is any sub-folder holding at least one .yaml file.
std::map<std::string, std::vector<std::string>> discover_groups(
    const std::vector<std::string>& path);

// The file for `name` ("config", "model/gpt") in the first directory that has <name>.yaml.
std::optional<std::string> find_config_file(const std::vector<std::string>& path,
                                            const std::string& name);

}  // namespace attnlab::config
