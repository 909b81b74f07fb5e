// The catalog of `attnlab` commands: name, one-line summary and usage text, without their code.
// The front end prints help from it without loading LibTorch; the runtime's command table
// (cli/command_table.cpp) pairs every entry with the function that runs it.
#pragma once

#include <string>

#include "common/registry.h"

namespace attnlab {

struct CommandInfo {
  std::string summary;  // one line for `attnlab --help`
  std::string usage;    // optional extra lines for `attnlab <command> --help` (arguments, examples)
};

const Registry<CommandInfo>& command_catalog();

}  // namespace attnlab
