// The command table: the function that runs each catalog entry (command_line/).
#include "cli/command.h"
#include "command_line/command_catalog.h"

namespace attnlab {

int run_export_command(const CommandArgs& args);     // cmd_export.cpp
int run_import_command(const CommandArgs& args);     // cmd_import.cpp
int run_plot_command(const CommandArgs& args);       // cmd_plot.cpp
int run_train_command(const CommandArgs& args);      // cmd_train.cpp
int run_sample_command(const CommandArgs& args);     // cmd_sample.cpp
int run_eval_command(const CommandArgs& args);       // cmd_eval.cpp
int run_probe_command(const CommandArgs& args);      // cmd_probe.cpp
int run_grow_command(const CommandArgs& args);       // cmd_grow.cpp
int run_config_command(const CommandArgs& args);     // cmd_config.cpp
int run_prepare_command(const CommandArgs& args);    // cmd_prepare.cpp
int run_submit_command(const CommandArgs& args);     // cmd_submit.cpp
int run_summarize_command(const CommandArgs& args);  // cmd_summarize.cpp

Registry<Command>& command_registry() {
  static Registry<Command> registry = [] {
    const std::map<std::string, std::function<int(const CommandArgs&)>> runners = {
        {"config", run_config_command}, {"export", run_export_command},
        {"import", run_import_command}, {"prepare", run_prepare_command},
        {"train", run_train_command},   {"sample", run_sample_command},
        {"eval", run_eval_command},     {"probe", run_probe_command},
        {"grow", run_grow_command},     {"plot", run_plot_command},
        {"submit", run_submit_command}, {"summarize", run_summarize_command}};
    Registry<Command> r("command");
    const auto& catalog = command_catalog();
    for (const auto& name : catalog.names()) {
      auto runner = runners.find(name);
      check_user(runner != runners.end(), "command '" + name + "' has no implementation");
      r.add(name, {runner->second});
    }
    return r;
  }();
  return registry;
}

}  // namespace attnlab
