// attnlab executable: a thin shell over the trainer library's command table.
#include <iostream>

#include "common/error.h"
#include "trainer/cli/command.h"

int main(int argc, char** argv) {
  try {
    if (argc < 2) {
      std::cerr << "usage: attnlab <command> [overrides]\n";
      return attnlab::kUserErrorExitCode;
    }
    attnlab::CommandArgs args;
    for (int i = 2; i < argc; ++i) args.overrides.push_back(argv[i]);
    return attnlab::command_registry().get(argv[1]).run(args);
  } catch (const attnlab::UserError& error) {
    std::cerr << "error: " << error.what() << "\n";
    return attnlab::kUserErrorExitCode;
  }
}
