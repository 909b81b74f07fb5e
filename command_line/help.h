// `attnlab --help` and `attnlab <command> --help` texts.
#pragma once

#include <optional>
#include <string>

namespace attnlab {

// Usage, global options, override grammar, the commands (from command_catalog()) and the config
// groups with their options discovered on the search path for `config_dir`.
std::string global_help(const std::optional<std::string>& config_dir);

// One command's summary and usage; UserError listing the commands when `name` is unknown.
std::string command_help(const std::string& name);

}  // namespace attnlab
