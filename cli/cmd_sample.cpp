// `attnlab sample run_dir=... prompt="..." max_new_tokens=... temperature=... top_k=... top_p=...
// [seed=...] [checkpoint=best|latest|path] [config overrides]`: text from a trained run with a
// KV cache; prints the text, then tokens/s and forward passes per token on stderr. Runs trained
// with objective=masked_diffusion decode block by block instead (sampler=confidence|first_hitting,
// threshold=τ, block_size=N; see inference/diffusion_sampler.h). A checkpoint with non-finite
// weights is an error (exit 2) naming it and the tensor.
#include <iostream>

#include "cli/command.h"
#include "cli/command_options.h"
#include "common/config_access.h"
#include "common/progress_meter.h"
#include "inference/diffusion_sampler.h"
#include "inference/sampling.h"
#include "trainer/nonfinite_guard.h"
#include "trainer/objective.h"
#include "trainer/run_setup.h"
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

// `attnlab sample`'s own keys. Those left unset take the default of the run's objective:
// autoregressive sampling or the masked-diffusion block sampler (inference/).
struct SampleCommandOptions {
  TORCH_ARG(std::optional<std::string>, run_dir) = std::nullopt;
  TORCH_ARG(std::string, checkpoint) = "best";
  TORCH_ARG(std::string, prompt) = "\n";
  TORCH_ARG(std::optional<int64_t>, max_new_tokens) = std::nullopt;
  TORCH_ARG(std::optional<double>, temperature) = std::nullopt;
  TORCH_ARG(int64_t, top_k) = 0;
  TORCH_ARG(double, top_p) = 1.0;
  TORCH_ARG(std::string, sampler) = "confidence";
  TORCH_ARG(double, threshold) = 0.9;
  TORCH_ARG(int64_t, block_size) = 0;

 public:
  template <class V>
  void visit(V& v) {
    v("run_dir", run_dir(), "the run to sample from (required)");
    v("checkpoint", checkpoint(), "best | latest | a checkpoint file");
    v("prompt", prompt(), "text the sample continues");
    v("max_new_tokens", max_new_tokens(), "tokens to generate (null: 200, diffusion 64)",
      config::at_least(0));
    v("temperature", temperature(),
      "softmax temperature (null: 1.0; diffusion 0.0, greedy unmasking)", config::at_least(0.0),
      config::finite());
    v("top_k", top_k(), "sample among the k most likely tokens (0: all)", config::at_least(0));
    v("top_p", top_p(), "nucleus sampling mass (1: all)", config::greater_than(0.0),
      config::at_most(1.0));
    v("sampler", sampler(),
      "diffusion: which masked tokens a step unmasks (confidence: the most confident; "
      "first_hitting: each whose confidence reaches threshold)",
      config::one_of({"confidence", "first_hitting"}));
    v("threshold", threshold(),
      "diffusion sampler=first_hitting: the confidence that unmasks a token",
      config::in_range(0.0, 1.0));
    v("block_size", block_size(), "diffusion: tokens per block (0: the model's block size)",
      config::at_least(0));
  }
};

}  // namespace

int run_sample_command(const CommandArgs& args) {
  std::vector<std::string> own, overrides;
  split_arguments(args.overrides, own, overrides);
  const auto options = bind_command_options<SampleCommandOptions>("sample", own);
  LoadedRun run = load_run(required_option("sample", "run_dir", options.run_dir()), overrides,
                           options.checkpoint());
  check_finite_weights(*run.model, run.checkpoint_path);
  const std::string& prompt = options.prompt();
  const std::vector<int64_t> ids = encode_prompt(*run.tokenizer, prompt);
  if (objective_name(*run.config) == "masked_diffusion") {
    DiffusionSampleOptions diffusion;
    diffusion.max_new_tokens = options.max_new_tokens().value_or(64);
    diffusion.block_size = options.block_size();
    diffusion.sampler = options.sampler();
    diffusion.threshold = options.threshold();
    diffusion.temperature = options.temperature().value_or(0.0);
    diffusion.mask_token = run.tokenizer->mask();
    diffusion.generator = at::detail::createCPUGenerator(cfg::get<int64_t>(*run.config, "seed"));
    DiffusionSample result = diffusion_generate(*run.model, ids, diffusion);
    std::vector<int32_t> out(result.tokens.begin() + result.prompt_length, result.tokens.end());
    std::cout << prompt << run.tokenizer->decode(out) << std::endl;
    std::fprintf(stderr, "%lld tokens in %.2f s: %.1f tokens/s, %.2f forward passes per token\n",
                 static_cast<long long>(result.generated), result.seconds, result.tokens_per_second,
                 result.forwards_per_token);
    return 0;
  }
  SampleOptions sample;
  sample.max_new_tokens = options.max_new_tokens().value_or(200);
  sample.temperature = options.temperature().value_or(1.0);
  sample.top_k = options.top_k();
  sample.top_p = options.top_p();
  sample.seed = cfg::get<int64_t>(*run.config, "seed");
  ProgressMeter meter("sample", static_cast<double>(sample.max_new_tokens), "tokens", 1.0,
                      TrainerOptions::from_config(*run.config).loop().progress(), nullptr,
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
