// The command table: one line per `attnlab <command>`.
#include "trainer/cli/command.h"

namespace attnlab {

int run_export_command(const CommandArgs& args);  // cmd_export.cpp
int run_plot_command(const CommandArgs& args);    // cmd_plot.cpp
int run_train_command(const CommandArgs& args);   // cmd_train.cpp
int run_sample_command(const CommandArgs& args);  // cmd_sample.cpp
int run_eval_command(const CommandArgs& args);    // cmd_eval.cpp
int run_probe_command(const CommandArgs& args);   // cmd_probe.cpp
int run_grow_command(const CommandArgs& args);    // cmd_grow.cpp
int run_config_command(const CommandArgs& args);  // cmd_config.cpp
int run_prepare_command(const CommandArgs& args);  // cmd_prepare.cpp

int run_submit_command(const CommandArgs& args);     // cmd_submit.cpp
int run_summarize_command(const CommandArgs& args);  // cmd_summarize.cpp

Registry<Command>& command_registry() {
  static Registry<Command> registry = [] {
    Registry<Command> r("command");
    r.add("config", {"print the composed config (--resolve: interpolated; -m: list sweep jobs)",
                     run_config_command,
                     "examples:\n  attnlab config model.d_model=256 attention=moh\n"
                     "  attnlab config --resolve experiment=tiny\n"
                     "  attnlab config -m seed=1,2,3 'attention=glob(*)'"});
    r.add("export", {"write a run's weights as a torch.load-able .pt", run_export_command});
    r.add("prepare",
          {"fetch corpora, build the tokenizer, write token shards", run_prepare_command});
    r.add("train", {"train a model (resumes from run.dir's latest checkpoint)", run_train_command});
    r.add("sample", {"generate text from a trained run (KV cache)", run_sample_command});
    r.add("eval", {"validation loss of a run, optionally at several sequence lengths",
                   run_eval_command});
    r.add("probe", {"run one attention layer on random input, dump tensors for parity checks",
                    run_probe_command});
    r.add("grow", {"grow a GDA checkpoint to more signal heads (function-preserving)",
                   run_grow_command});
    r.add("plot", {"plot loss and lr curves of a run to loss.png", run_plot_command});
    r.add("submit", {"submit training to Slurm (-m: one job array; --dry-run: print the script)",
                     run_submit_command});
    r.add("summarize",
          {"rebuild summary.csv/.md/.png of a sweep directory", run_summarize_command});
    return r;
  }();
  return registry;
}

}  // namespace attnlab
