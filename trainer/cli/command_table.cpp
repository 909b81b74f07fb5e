// The command table: one line per `attnlab <command>`.
#include "trainer/cli/command.h"

namespace attnlab {

Registry<Command>& command_registry() {
  static Registry<Command> registry = [] {
    Registry<Command> r("command");
    return r;
  }();
  return registry;
}

}  // namespace attnlab
