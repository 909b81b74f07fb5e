// Implementation of command_line.h.
#include "command_line/command_line.h"

#include <CLI/CLI.hpp>

#include "common/error.h"

namespace attnlab {

CommandLine parse_command_line(int argc, char** argv) {
  CommandLine line;
  line.args.argv.assign(argv, argv + argc);
  CLI::App app{"attnlab"};
  app.set_help_flag();  // our own help: it lists commands and config groups
  std::string config_dir;
  std::vector<std::string> positional;
  app.add_flag("-h,--help", line.help);
  app.add_flag("--version", line.version);
  app.add_option("--config-dir", config_dir);
  app.add_flag("-m,--multirun", line.args.multirun);
  app.add_flag("--resolve", line.args.resolve);
  app.add_flag("--defaults", line.args.defaults);
  app.add_flag("--dry-run", line.args.dry_run);
  app.add_option("command_and_overrides", positional);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    throw UserError(std::string(e.what()) + " (see attnlab --help)");
  }
  if (!config_dir.empty()) line.args.config_dir = config_dir;
  if (!positional.empty()) {
    line.command = positional.front();
    line.args.overrides.assign(positional.begin() + 1, positional.end());
  }
  // An option a command does not read would be silently ignored: `eval --dry-run` would run.
  if (line.args.dry_run && !line.help && !line.command.empty() && line.command != "train" &&
      line.command != "submit")
    throw UserError("--dry-run applies to train and submit, not to '" + line.command + "'");
  if (line.args.resolve && !line.help && !line.command.empty() && line.command != "config")
    throw UserError("--resolve applies to config, not to '" + line.command + "'");
  if (line.args.defaults && !line.help && !line.command.empty() && line.command != "config")
    throw UserError("--defaults applies to config, not to '" + line.command + "'");
  return line;
}

}  // namespace attnlab
