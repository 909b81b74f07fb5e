// The command catalog: one entry per `attnlab <command>`.
#include "command_line/command_catalog.h"

namespace attnlab {

const Registry<CommandInfo>& command_catalog() {
  static const Registry<CommandInfo> catalog = [] {
    Registry<CommandInfo> r("command");
    r.add("config", {"print the composed config (--resolve: interpolated; -m: list sweep jobs)",
                     "examples:\n  attnlab config model.d_model=256 attention=moh\n"
                     "  attnlab config --resolve experiment=tiny\n"
                     "  attnlab config --defaults optim    every option: type, default, meaning\n"
                     "  attnlab config -m seed=1,2,3 'attention=glob(*)'"});
    r.add(
        "export",
        {"write a run's weights as a torch.load-able .pt, a Hugging Face folder or a PEFT adapter",
         "keys (key=value):\n"
         "  run_dir=DIR|FILE    a run, a checkpoint file or an import folder  required\n"
         "  checkpoint=WHICH    best | latest | <path>                      default best\n"
         "  format=pt|hf|peft   .pt state_dict | config.json + safetensors  default pt\n"
         "                      | a finetune=lora run's PEFT adapter folder\n"
         "                      (hf of a LoRA run: adapters merged into the base)\n"
         "  out=PATH            default <run_dir>/model.pt (pt), <run_dir>/hf (hf),\n"
         "                      <run_dir>/peft (peft)\n"
         "  dtype=TYPE          hf: float32 | bfloat16 | float16            default float32\n"
         "  max_shard_size=S    hf: shard above this size (e.g. 2GB)         default 5GB"});
    r.add("import",
          {"convert a Hugging Face checkpoint (Llama, Mistral, Qwen2, GPT-2) to attnlab",
           "keys (key=value):\n"
           "  hf_dir=DIR          folder with config.json + *.safetensors     required\n"
           "  out=DIR             the new attnlab folder (init_from=DIR)      required\n"
           "  dtype=TYPE          float32 | bfloat16 | float16                default float32\n"
           "or skip the folder: attnlab train init_from=hf:DIR ..."});
    r.add("prepare", {"fetch corpora, build the tokenizer, write token shards",
                      "takes the training config's overrides (data=..., tokenizer=...), e.g.\n"
                      "  attnlab prepare data=sotu tokenizer=bpe tokenizer.vocab_size=4096"});
    r.add("train",
          {"train a model (a new run, or resume one: see run.dir)",
           "takes config overrides (see attnlab --help for the groups), e.g.\n"
           "  attnlab train attention=moh trainer.max_steps=500 run.dir=runs/moh\n"
           "  attnlab train --dry-run experiment=tiny    the config and run dir only\n"
           "  attnlab train -m attention=mha,diff seed=1,2   a sweep\n"
           "run.dir is the run directory, printed when training starts. The default\n"
           "(runs/<name>/<date_time>) is new for every command, so a command run twice\n"
           "trains twice; to resume an interrupted run, pass its directory:\n"
           "  attnlab train run.dir=runs/default/2026-12-07_10-00-00\n"
           "which continues from its latest checkpoint (run.resume: auto, never or must)."});
    r.add("sample",
          {"generate text from a trained run (KV cache)",
           "keys (key=value; other key=value are config overrides of the run):\n"
           "  run_dir=DIR          the run                                     required\n"
           "  checkpoint=WHICH     best | latest | <path>                      default best\n"
           "  prompt=TEXT          the prompt                                  default newline\n"
           "  max_new_tokens=N     tokens to generate          default 200 (diffusion: 64)\n"
           "  temperature=T        sampling temperature        default 1.0 (diffusion: 0)\n"
           "  top_k=K              keep the K most likely (0 = all)            default 0\n"
           "  top_p=P              nucleus sampling                            default 1.0\n"
           "  sampler=NAME         diffusion: confidence | first_hitting  default confidence\n"
           "  threshold=X          diffusion runs: confidence threshold        default 0.9\n"
           "  block_size=N         diffusion runs: block size (0 = the run's)  default 0"});
    r.add("eval",
          {"evaluate a run: an LM at several lengths, a classifier on val and test",
           "keys (key=value; other key=value are config overrides of the run):\n"
           "  run_dir=DIR          the run                                     required\n"
           "  checkpoint=WHICH     best | latest | <path>                      default best\n"
           "  eval.seq_lens=[..]   lengths to evaluate at (empty: training length) default []\n"
           "  eval.batches=N       batches per length                          default 20\n"
           "  eval.batch_size=N    0 = data.batch_size                         default 0\n"
           "  eval.t_samples=N     diffusion runs: (t, mask) draws per window  default 4"});
    r.add("probe", {"run one attention layer on random input, dump tensors for parity checks",
                    "takes config overrides: probe.* (configs/probe/default.yaml), attention=..."});
    r.add("grow", {"grow a GDA checkpoint to more signal heads (function-preserving)",
                   "keys (key=value):\n"
                   "  run_dir=DIR | checkpoint=FILE   the source (exactly one)         required\n"
                   "  attention.n_signal=N            signal heads after growing       required\n"
                   "  out=FILE                        the grown checkpoint             required\n"
                   "  noise_std=X                     noise on the new heads           default 0\n"
                   "  seed=N                          seed of that noise               default 0"});
    r.add("plot",
          {"plot loss and lr curves of a run to loss.png",
           "keys (key=value):\n"
           "  run_dir=DIR          the run                                     required\n"
           "  out=FILE             the picture                  default <run_dir>/loss.png\n"
           "  python=PATH          the Python with matplotlib        default .venv/bin/python\n"
           "  series_json=FILE     also write the plotted series as JSON      default none"});
    r.add("submit",
          {"submit training to Slurm (-m: one job array; --dry-run: print the script)",
           "takes the training config's overrides; launcher.* (configs/launcher/slurm.yaml)\n"
           "sets partition, time, nodes, tasks, GPUs"});
    r.add("summarize",
          {"rebuild summary.csv/.md/.png of a sweep directory",
           "arguments:\n"
           "  DIR                  the sweep directory (holding multirun.yaml)\n"
           "  baseline=<row>       the row the others are compared with (Welch t-test;\n"
           "                       default: the first row), by its label\n"
           "  target=<val loss>    also report the first step each row reached it\n"
           "  plot=true            false: no summary.png"});
    return r;
  }();
  return catalog;
}

}  // namespace attnlab
