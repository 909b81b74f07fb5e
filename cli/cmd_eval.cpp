// `attnlab eval run_dir=... [eval.seq_lens=[128,256,...]] [eval.batches=N] [checkpoint=best]`:
// validation loss, perplexity and bits per byte of a trained run at each requested sequence
// length (lengths beyond the training length test extrapolation; nothing caps them: RoPE and the
// masks are computed for the positions at hand and model.max_seq_len is not a limit). Prints a
// table and writes <run_dir>/eval.json.
// A checkpoint with non-finite weights, or a non-finite loss, is an error (exit 2), never a
// table of -nan.
//
// For objective=masked_diffusion the reported number is the masked-diffusion NELBO (an upper
// bound on the NLL, methods.md §4) per predicted token: each window is evaluated eval.t_samples
// times (fresh t and masks each time, all drawn from the evaluator's fixed-seed generator, so the
// bound is reproducible), and the objective's Σ_masked CE/t ÷ (all T tokens) is rescaled to
// ÷ (tokens that can be masked), because position 0 (objective.ignore_bos) is given context and
// never predicted. An AR run's weights are evaluated as a dLM with
//   attnlab eval run_dir=<ar> objective.name=masked_diffusion model.mask=block_causal ...
#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/config_access.h"
#include "common/progress_meter.h"
#include "data/prepare.h"
#include "data/sampler.h"
#include "losses/loss_set.h"
#include "trainer/atomic_file.h"
#include "cli/command.h"
#include "cli/command_options.h"
#include "trainer/evaluator.h"
#include "trainer/nonfinite_guard.h"
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
  check_finite_weights(*run.model, run.checkpoint_path);
  const YAML::Node& config = run.config;
  PreparedData data = prepare_data(config);
  std::vector<int64_t> seq_lens = cfg::get_or<std::vector<int64_t>>(config, "eval.seq_lens", {});
  if (seq_lens.empty()) seq_lens.push_back(cfg::get<int64_t>(config, "data.seq_len"));
  int64_t batch_size = cfg::get_or<int64_t>(config, "eval.batch_size", 0);
  if (batch_size <= 0) batch_size = cfg::get<int64_t>(config, "data.batch_size");
  const int64_t n_batches = cfg::get_or<int64_t>(config, "eval.batches", 20);
  const std::string objective_name =
      cfg::get_or<std::string>(config, "objective.name", "autoregressive");
  const bool diffusion = objective_name == "masked_diffusion";
  const int64_t t_samples = diffusion ? cfg::get_or<int64_t>(config, "eval.t_samples", 4) : 1;
  check_user(t_samples > 0, "eval.t_samples: expected a positive number of t draws, got " +
                                std::to_string(t_samples));
  const bool ignore_bos = cfg::get_or<bool>(config, "objective.ignore_bos", true);

  LossSet losses(config, run.model->options().n_layers);
  auto objective = objective_registry().get(objective_name)(config);
  ObjectiveContext context;
  context.config = &config;
  context.mask_token = run.tokenizer->mask();
  context.bos_token = run.tokenizer->bos();
  context.generator = at::detail::createCPUGenerator(cfg::get<int64_t>(config, "seed"));
  DistributedContext single_process;

  nlohmann::json results = nlohmann::json::array();
  std::printf("checkpoint: %s\n", run.checkpoint_path.c_str());
  if (diffusion)
    std::printf(
        "masked-diffusion NELBO per predicted token (upper bound on NLL), %lld (t, mask) draw(s) "
        "per "
        "window from the evaluator's fixed seed\n%8s %10s %10s %10s %10s %8s\n",
        static_cast<long long>(t_samples), "seq_len", "objective", "nelbo", "nelbo_ppl",
        "nelbo_bpb", "batches");
  else
    std::printf("%8s %10s %10s %10s %8s\n", "seq_len", "val_loss", "val_ppl", "val_bpb", "batches");
  for (int64_t seq_len : seq_lens) {
    check_user(seq_len > 0, "eval.seq_lens: lengths must be positive");
    // Long lengths may not fit n_batches of the validation split: use as many as fit.
    const int64_t windows = (data.val->size() - 1) / seq_len;
    const int64_t fit = std::min<int64_t>(n_batches, windows / batch_size);
    check_user(fit > 0, "eval: the validation split (" + std::to_string(data.val->size()) +
                            " tokens) is too short for seq_len " + std::to_string(seq_len) +
                            " x batch " + std::to_string(batch_size));
    auto windows_once = eval_batches(*data.val, fit, batch_size, seq_len);
    // Diffusion: every window t_samples times; the evaluator's generator advances between them.
    std::vector<Batch> batches;
    for (int64_t k = 0; k < t_samples; ++k)
      batches.insert(batches.end(), windows_once.begin(), windows_once.end());
    ProgressMeter meter("eval seq_len " + std::to_string(seq_len),
                        static_cast<double>(batches.size()), "batches", 1.0,
                        cfg::get_or<std::string>(config, "trainer.progress", "auto"), nullptr,
                        "trainer.progress");
    EvalResult result = evaluate(*run.model, *objective, losses, context, batches, single_process,
                                 run.device, data.val_bytes_per_token(), &meter);
    meter.finish();
    check_user(std::isfinite(result.loss),
               "eval: checkpoint '" + run.checkpoint_path + "' gives a non-finite loss (" +
                   std::to_string(result.loss) + ") at seq_len " + std::to_string(seq_len) +
                   ": its weights are finite, but the model overflows on this data");
    nlohmann::json row = {{"seq_len", seq_len}, {"batches", fit}};
    if (!diffusion) {
      std::printf("%8lld %10.4f %10.2f %10.4f %8lld\n", static_cast<long long>(seq_len),
                  result.loss, result.perplexity, result.bits_per_byte,
                  static_cast<long long>(fit));
      row.update({{"val_loss", result.loss},
                  {"val_perplexity", result.perplexity},
                  {"val_bits_per_byte", result.bits_per_byte}});
    } else {
      const int64_t predicted = seq_len - (ignore_bos ? 1 : 0);
      check_user(predicted > 0, "eval.seq_lens: " + std::to_string(seq_len) +
                                    " leaves no token to predict (objective.ignore_bos)");
      const double scale = static_cast<double>(seq_len) / static_cast<double>(predicted);
      const double nelbo = result.loss * scale, bpb = result.bits_per_byte * scale;
      std::printf("%8lld %10.4f %10.4f %10.2f %10.4f %8lld\n", static_cast<long long>(seq_len),
                  result.loss, nelbo, std::exp(nelbo), bpb, static_cast<long long>(fit));
      row.update({{"val_loss", nelbo},
                  {"val_perplexity", std::exp(nelbo)},
                  {"val_bits_per_byte", bpb},
                  {"objective_loss", result.loss},
                  {"predicted_tokens_per_window", predicted}});
    }
    results.push_back(row);
  }
  nlohmann::json out = {{"checkpoint", run.checkpoint_path},
                        {"objective", objective_name},
                        {"train_seq_len", cfg::get<int64_t>(config, "data.seq_len")},
                        {"results", results}};
  if (diffusion) out["t_samples"] = t_samples;
  write_file_atomic((std::filesystem::path(run_dir) / "eval.json").string(), out.dump(2) + "\n");
  return 0;
}

}  // namespace attnlab
