// `attnlab sample run_dir=... prompt="..." max_new_tokens=... temperature=... top_k=... top_p=...
// [seed=...] [checkpoint=best|latest|path] [config overrides]`: text from a trained run with a
// KV cache; prints the text, then tokens/s and forward passes per token on stderr. Runs trained
// with objective=masked_diffusion decode block by block instead (sampler=confidence|first_hitting,
// threshold=τ, block_size=N; see trainer/diffusion_sampler.h). A checkpoint with non-finite
// weights is an error (exit 2) naming it and the tensor.
#include <iostream>

#include "cli/command.h"
#include "cli/command_options.h"
#include "common/config_access.h"
#include "common/progress_meter.h"
#include "trainer/diffusion_sampler.h"
#include "trainer/nonfinite_guard.h"
#include "trainer/run_setup.h"
#include "trainer/sampling.h"
#include "trainer/trainer_options.h"

namespace attnlab {

namespace {

// Splits `args` into this command's own keys and config overrides (keys containing a dot or a
// leading +/~ are overrides on the run's saved config).
void split_arguments(const std::vector<std::string>& args, std::vector<std::string>& own,
                     std::vector<std::string>& overrides) {
  for (const auto& arg : args) {
    const auto eq = arg.find('=');
    const std::string key = arg.substr(0, eq);
    const bool is_override = key.find('.') != std::string::npos || key.empty() || key[0] == '+' ||
                             key[0] == '~' || key == "seed";
    (is_override ? overrides : own).push_back(arg);
  }
}

double parse_number(const CommandOptions& options, const std::string& key, double fallback) {
  if (!options.has(key)) return fallback;
  try {
    size_t used = 0;
    double value = std::stod(options.get(key), &used);
    if (used == options.get(key).size()) return value;
  } catch (const std::exception&) {
  }
  throw UserError("attnlab sample: " + key + "='" + options.get(key) + "' is not a number");
}

}  // namespace

int run_sample_command(const CommandArgs& args) {
  std::vector<std::string> own, overrides;
  split_arguments(args.overrides, own, overrides);
  CommandOptions options("sample", own,
                         {"run_dir", "prompt", "max_new_tokens", "temperature", "top_k", "top_p",
                          "checkpoint", "sampler", "threshold", "block_size"});
  LoadedRun run = load_run(options.get("run_dir"), overrides, options.get_or("checkpoint", "best"));
  check_finite_weights(*run.model, run.checkpoint_path);
  const std::string prompt = options.get_or("prompt", "\n");
  const std::vector<int64_t> ids = encode_prompt(*run.tokenizer, prompt);
  if (cfg::get_or<std::string>(run.config, "objective.name", "autoregressive") ==
      "masked_diffusion") {
    DiffusionSampleOptions diffusion;
    diffusion.max_new_tokens = static_cast<int64_t>(parse_number(options, "max_new_tokens", 64));
    diffusion.block_size = static_cast<int64_t>(parse_number(options, "block_size", 0));
    diffusion.sampler = options.get_or("sampler", "confidence");
    diffusion.threshold = parse_number(options, "threshold", 0.9);
    diffusion.temperature = parse_number(options, "temperature", 0.0);
    diffusion.mask_token = run.tokenizer->mask();
    diffusion.generator = at::detail::createCPUGenerator(cfg::get<int64_t>(run.config, "seed"));
    DiffusionSample result = diffusion_generate(*run.model, ids, diffusion);
    std::vector<int32_t> out(result.tokens.begin() + result.prompt_length, result.tokens.end());
    std::cout << prompt << run.tokenizer->decode(out) << std::endl;
    std::fprintf(stderr, "%lld tokens in %.2f s: %.1f tokens/s, %.2f forward passes per token\n",
                 static_cast<long long>(result.generated), result.seconds, result.tokens_per_second,
                 result.forwards_per_token);
    return 0;
  }
  SampleOptions sample;
  sample.max_new_tokens = static_cast<int64_t>(parse_number(options, "max_new_tokens", 200));
  sample.temperature = parse_number(options, "temperature", 1.0);
  sample.top_k = static_cast<int64_t>(parse_number(options, "top_k", 0));
  sample.top_p = parse_number(options, "top_p", 1.0);
  sample.seed = cfg::get<int64_t>(run.config, "seed");
  ProgressMeter meter("sample", static_cast<double>(sample.max_new_tokens), "tokens", 1.0,
                      TrainerOptions::from_config(run.config).loop().progress(), nullptr,
                      "trainer.progress");
  sample.on_token = [&meter](int64_t generated) { meter.update(static_cast<double>(generated)); };
  SampleResult result = generate(*run.model, ids, sample);
  meter.finish();
  std::vector<int32_t> out(result.tokens.begin(), result.tokens.end());
  std::cout << prompt << run.tokenizer->decode(out) << std::endl;
  std::fprintf(
      stderr, "%zu tokens in %.2f s: %.1f tokens/s, %.2f forward passes per token\n",
      result.tokens.size(), result.seconds, result.tokens_per_second,
      static_cast<double>(result.forward_passes) / std::max<size_t>(1, result.tokens.size()));
  return 0;
}

}  // namespace attnlab
