// The command catalog: one entry per `attnlab <command>`.
#include "trainer/cli/front/command_catalog.h"

namespace attnlab {

const Registry<CommandInfo>& command_catalog() {
  static const Registry<CommandInfo> catalog = [] {
    Registry<CommandInfo> r("command");
    r.add("config", {"print the composed config (--resolve: interpolated; -m: list sweep jobs)",
                     "examples:\n  attnlab config model.d_model=256 attention=moh\n"
                     "  attnlab config --resolve experiment=tiny\n"
                     "  attnlab config -m seed=1,2,3 'attention=glob(*)'"});
    r.add("export", {"write a run's weights as a torch.load-able .pt", ""});
    r.add("prepare", {"fetch corpora, build the tokenizer, write token shards", ""});
    r.add("train", {"train a model (resumes from run.dir's latest checkpoint)", ""});
    r.add("sample", {"generate text from a trained run (KV cache)", ""});
    r.add("eval", {"validation loss of a run, optionally at several sequence lengths", ""});
    r.add("probe", {"run one attention layer on random input, dump tensors for parity checks", ""});
    r.add("grow", {"grow a GDA checkpoint to more signal heads (function-preserving)", ""});
    r.add("plot", {"plot loss and lr curves of a run to loss.png", ""});
    r.add("submit",
          {"submit training to Slurm (-m: one job array; --dry-run: print the script)", ""});
    r.add("summarize", {"rebuild summary.csv/.md/.png of a sweep directory", ""});
    return r;
  }();
  return catalog;
}

}  // namespace attnlab
