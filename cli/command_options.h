// `key=value` arguments of the non-training commands (export, plot, ...). Each command declares
// its own keys once, as a typed options struct in its own file (config/options.h's visit schema:
// key, field with its default, meaning, checks), and binds its arguments with
// bind_command_options<Options>(command, args): malformed arguments, unknown or repeated keys are
// a UserError listing the accepted keys, and a value of the wrong type or out of range is one
// line naming the key ("attnlab sample: top_k: expected int, got 'x'").
#pragma once

#include <torch/arg.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "config/options.h"

namespace attnlab {

class CommandOptions {
 public:
  // `command` names the command in error messages; `accepted` are the allowed keys.
  CommandOptions(const std::string& command, const std::vector<std::string>& args,
                 const std::vector<std::string>& accepted);

  bool has(const std::string& key) const { return values_.count(key) > 0; }
  // The value of a required key (UserError "attnlab <command>: missing <key>=...").
  const std::string& get(const std::string& key) const;
  const std::map<std::string, std::string>& values() const { return values_; }

 private:
  std::string command_;
  std::map<std::string, std::string> values_;
};

// The keys an options struct declares, in order.
template <class Options>
std::vector<std::string> command_option_keys() {
  config::detail::NameCollector collector;
  Options options;
  options.visit(collector);
  return collector.names;
}

// The command's options with `args` applied (see the top of this file).
template <class Options>
Options bind_command_options(const std::string& command, const std::vector<std::string>& args) {
  const CommandOptions parsed(command, args, command_option_keys<Options>());
  YAML::Node values(YAML::NodeType::Map);
  for (const auto& [key, value] : parsed.values()) values[key] = value;
  try {
    return config::bind<Options>(values, "");
  } catch (const UserError& error) {
    throw UserError("attnlab " + command + ": " + error.what());
  }
}

// The value of a key the command cannot run without (UserError "attnlab <command>: missing
// required option <key>=..." when it was not given).
const std::string& required_option(const std::string& command, const std::string& key,
                                   const std::optional<std::string>& value);

}  // namespace attnlab
