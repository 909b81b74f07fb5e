// `attnlab <command> [options] [overrides]`: each command is a function in its own file under
// cli/, paired with its catalog entry (command_line/command_catalog.cpp) in
// command_table.cpp. The runtime entry point parses the command line and hands the command the
// rest as CommandArgs.
#pragma once

#include <functional>
#include <string>

#include "command_line/command_line.h"
#include "common/registry.h"

namespace attnlab {

// A command's code; its summary and usage live in the catalog (command_catalog.h).
struct Command {
  std::function<int(const CommandArgs&)> run;
};

// name -> command; the table lives in cli/command_table.cpp.
Registry<Command>& command_registry();

}  // namespace attnlab
