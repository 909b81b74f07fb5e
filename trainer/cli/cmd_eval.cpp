// `attnlab eval run_dir=... [eval.seq_lens=[128,256,...]] [eval.batches=N] [checkpoint=best]`:
// validation loss, perplexity and bits per byte of a trained run at each requested sequence
// length (lengths beyond the training length test extrapolation). Prints a table and writes
// <run_dir>/eval.json.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/config_access.h"
#include "data/prepare.h"
#include "data/sampler.h"
#include "losses/loss_set.h"
#include "trainer/atomic_file.h"
#include "trainer/cli/command.h"
#include "trainer/cli/command_options.h"
#include "trainer/evaluator.h"
#include "trainer/objective.h"
#include "trainer/run_setup.h"

namespace attnlab {

int run_eval_command(const CommandArgs& args) {
  std::vector<std::string> own, overrides;
  for (const auto& arg : args.overrides) {
    const std::string key = arg.substr(0, arg.find('='));
    (key == "run_dir" || key == "checkpoint" ? own : overrides).push_back(arg);
  }
  CommandOptions options("eval", own, {"run_dir", "checkpoint"});
  const std::string run_dir = options.get("run_dir");
  LoadedRun run = load_run(run_dir, overrides, options.get_or("checkpoint", "best"));
  const YAML::Node& config = run.config;
  PreparedData data = prepare_data(config);
  std::vector<int64_t> seq_lens = cfg::get_or<std::vector<int64_t>>(config, "eval.seq_lens", {});
  if (seq_lens.empty()) seq_lens.push_back(cfg::get<int64_t>(config, "data.seq_len"));
  int64_t batch_size = cfg::get_or<int64_t>(config, "eval.batch_size", 0);
  if (batch_size <= 0) batch_size = cfg::get<int64_t>(config, "data.batch_size");
  const int64_t n_batches = cfg::get_or<int64_t>(config, "eval.batches", 20);

  LossSet losses(config, run.model->options().n_layers);
  auto objective = objective_registry().get(
      cfg::get_or<std::string>(config, "objective.name", "autoregressive"))(config);
  ObjectiveContext context;
  context.config = &config;
  context.mask_token = run.tokenizer->mask();
  context.bos_token = run.tokenizer->bos();
  context.generator = at::detail::createCPUGenerator(cfg::get<int64_t>(config, "seed"));
  DistributedContext single_process;

  nlohmann::json results = nlohmann::json::array();
  std::printf("checkpoint: %s\n%8s %10s %10s %10s %8s\n", run.checkpoint_path.c_str(), "seq_len",
              "val_loss", "val_ppl", "val_bpb", "batches");
  for (int64_t seq_len : seq_lens) {
    check_user(seq_len > 0, "eval.seq_lens: lengths must be positive");
    // Long lengths may not fit n_batches of the validation split: use as many as fit.
    const int64_t windows = (data.val->size() - 1) / seq_len;
    const int64_t fit = std::min<int64_t>(n_batches, windows / batch_size);
    check_user(fit > 0, "eval: the validation split (" + std::to_string(data.val->size()) +
                            " tokens) is too short for seq_len " + std::to_string(seq_len) +
                            " x batch " + std::to_string(batch_size));
    auto batches = eval_batches(*data.val, fit, batch_size, seq_len);
    EvalResult result = evaluate(*run.model, *objective, losses, context, batches, single_process,
                                 run.device, data.val_bytes_per_token());
    std::printf("%8lld %10.4f %10.2f %10.4f %8lld\n", static_cast<long long>(seq_len), result.loss,
                result.perplexity, result.bits_per_byte, static_cast<long long>(result.batches));
    results.push_back({{"seq_len", seq_len},
                       {"val_loss", result.loss},
                       {"val_perplexity", result.perplexity},
                       {"val_bits_per_byte", result.bits_per_byte},
                       {"batches", result.batches}});
  }
  nlohmann::json out = {{"checkpoint", run.checkpoint_path},
                        {"train_seq_len", cfg::get<int64_t>(config, "data.seq_len")},
                        {"results", results}};
  write_file_atomic((std::filesystem::path(run_dir) / "eval.json").string(), out.dump(2) + "\n");
  return 0;
}

}  // namespace attnlab
