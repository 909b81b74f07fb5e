// attnlab executable: `attnlab <command> [options] [overrides...]`. Parses the global options
// with CLI11, then hands the command its CommandArgs. Every usage or config error is a
// UserError: printed as one `error: ...` line, exit code 2, no stack trace.
#include <CLI/CLI.hpp>
#include <iostream>

#include "common/allocator_tuning.h"
#include "common/error.h"
#include "common/thread_environment.h"
#include "trainer/cli/command.h"
#include "trainer/cli/help.h"

namespace {

int run(int argc, char** argv) {
  attnlab::CommandArgs args;
  args.argv.assign(argv, argv + argc);

  CLI::App app{"attnlab"};
  app.set_help_flag();  // our own help: it lists commands and config groups
  bool help = false;
  std::string config_dir;
  std::vector<std::string> positional;
  app.add_flag("-h,--help", help);
  app.add_option("--config-dir", config_dir);
  app.add_flag("-m,--multirun", args.multirun);
  app.add_flag("--resolve", args.resolve);
  app.add_flag("--dry-run", args.dry_run);
  app.add_option("command_and_overrides", positional);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    throw attnlab::UserError(std::string(e.what()) + " (see attnlab --help)");
  }
  if (!config_dir.empty()) args.config_dir = config_dir;

  if (positional.empty()) {
    std::cout << attnlab::global_help(args.config_dir);
    return help ? 0 : attnlab::kUserErrorExitCode;
  }
  const std::string command = positional.front();
  if (help) {
    std::cout << attnlab::command_help(command);
    return 0;
  }
  args.overrides.assign(positional.begin() + 1, positional.end());
  return attnlab::command_registry().get(command).run(args);
}

}  // namespace

int main(int argc, char** argv) {
  attnlab::ensure_thread_environment(argv);  // may re-execute this program once
  attnlab::tune_allocator();
  try {
    return run(argc, argv);
  } catch (const attnlab::UserError& error) {
    std::cerr << "error: " << error.what() << "\n";
    return attnlab::kUserErrorExitCode;
  }
}
