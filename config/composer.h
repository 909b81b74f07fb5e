// Builds the composed config from the primary config's defaults tree (Hydra 1.1 rules, see
// config.h) and the command line's group overrides. Value overrides are applied afterwards by
// compose() (compose.cpp).
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/override_parser.h"

namespace attnlab::config {

// `group_overrides` are parsed overrides whose key is a config group (group=option, group=null,
// +group=option, ++group=option, ~group, ~group=option).
Composition compose_defaults_tree(const std::vector<std::string>& path,
                                  const std::map<std::string, std::vector<std::string>>& groups,
                                  const std::string& primary_file,
                                  const std::vector<Override>& group_overrides);

}  // namespace attnlab::config
