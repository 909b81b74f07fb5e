// `attnlab <command> [options] [overrides]`: each command is a function in its own file under
// trainer/cli/, listed in command_table.cpp. main() parses the global options (CLI11), then hands
// the command the rest as CommandArgs.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/registry.h"

namespace attnlab {

struct CommandArgs {
  std::vector<std::string> overrides;     // positional key=value / group=option / ~key / +key=value
  bool multirun = false;                  // -m / --multirun
  bool resolve = false;                   // --resolve (attnlab config)
  bool dry_run = false;                   // --dry-run (attnlab submit)
  std::optional<std::string> config_dir;  // --config-dir
  std::vector<std::string> argv;          // the full command line, recorded in run dirs
};

struct Command {
  std::string summary;  // one line for `attnlab --help`
  std::function<int(const CommandArgs&)> run;
  std::string usage;  // optional extra lines for `attnlab <command> --help` (arguments, examples)
};

// name -> command; the table lives in trainer/cli/command_table.cpp.
Registry<Command>& command_registry();

}  // namespace attnlab
