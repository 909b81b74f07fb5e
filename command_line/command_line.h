// The `attnlab` command line, parsed without LibTorch: the front end (apps/attnlab/main.cpp) uses
// it to answer --help/--version at once, and the runtime library parses the same argv again with
// it to run the command. CLI11 handles the global options; everything after the command name is
// an override.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace attnlab {

struct CommandArgs {
  std::vector<std::string> overrides;     // positional key=value / group=option / ~key / +key=value
  bool multirun = false;                  // -m / --multirun
  bool resolve = false;                   // --resolve (attnlab config)
  bool defaults = false;                  // --defaults (attnlab config): typed options' defaults
  bool dry_run = false;                   // --dry-run (attnlab train, submit)
  std::optional<std::string> config_dir;  // --config-dir
  std::vector<std::string> argv;          // the full command line, recorded in run dirs
};

struct CommandLine {
  bool help = false;     // -h / --help
  bool version = false;  // --version
  std::string command;   // empty when none was given
  CommandArgs args;
};

// UserError (mentioning `attnlab --help`) on an unknown option or a missing option value.
CommandLine parse_command_line(int argc, char** argv);

}  // namespace attnlab
