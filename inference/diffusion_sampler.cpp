// Semi-autoregressive block diffusion sampling; see diffusion_sampler.h.
#include "inference/diffusion_sampler.h"

#include <chrono>

#include "common/error.h"
#include "tasks/lm/objectives/masked_diffusion.h"

namespace attnlab {

namespace {

// Restores the model's train/eval mode on scope exit.
class EvalModeGuard {
 public:
  explicit EvalModeGuard(GptImpl& model) : model_(model), was_training_(model.is_training()) {
    model_.eval();
  }
  ~EvalModeGuard() { model_.train(was_training_); }

 private:
  GptImpl& model_;
  bool was_training_;
};

struct Choice {
  torch::Tensor token;       // [L] chosen token per position of the block
  torch::Tensor confidence;  // [L] probability of that token
};

// Per position: arg-max (temperature 0) or a sample from softmax(logits / temperature).
Choice choose_tokens(const torch::Tensor& logits, double temperature, torch::Generator& generator) {
  auto probs = torch::softmax(logits.to(torch::kDouble), -1).cpu();  // [L, V]
  Choice c;
  if (temperature <= 0) {
    auto best = probs.max(-1);
    c.token = std::get<1>(best);
    c.confidence = std::get<0>(best);
  } else {
    auto tempered = torch::softmax(logits.to(torch::kDouble).cpu() / temperature, -1);
    c.token = torch::multinomial(tempered, 1, false, generator).squeeze(-1);
    c.confidence = probs.gather(-1, c.token.unsqueeze(-1)).squeeze(-1);
  }
  return c;
}

}  // namespace

DiffusionSample diffusion_generate(GptImpl& model, const std::vector<int64_t>& prompt,
                                   const DiffusionSampleOptions& options) {
  const int64_t vocab = model.options().vocab_size;
  const int64_t block =
      options.block_size > 0 ? options.block_size : model.options().mask.block_size;
  check_user(block > 0,
             "diffusion sampling needs block_size=N or the model's model.block_size > 0");
  check_user(!prompt.empty(), "diffusion sampling needs a non-empty prompt (at least BOS)");
  check_user(options.mask_token >= 0 && options.mask_token < vocab,
             "diffusion sampling needs the tokenizer's [MASK] id inside the model vocabulary");
  check_user(options.sampler == "confidence" || options.sampler == "first_hitting",
             "sample.sampler: expected confidence or first_hitting, got '" + options.sampler + "'");
  check_user(options.max_new_tokens >= 0, "sample.max_new_tokens must be >= 0");

  torch::NoGradGuard no_grad;
  EvalModeGuard eval_mode(model);
  torch::Generator generator =
      options.generator.defined() ? options.generator : at::detail::getDefaultCPUGenerator();
  const auto start_time = std::chrono::steady_clock::now();
  const torch::Device device = model.embed->weight.device();
  auto long_options = torch::TensorOptions().dtype(torch::kLong).device(device);

  DiffusionSample out;
  out.tokens = prompt;
  out.prompt_length = static_cast<int64_t>(prompt.size());
  const int64_t total = out.prompt_length + options.max_new_tokens;
  out.tokens.resize(static_cast<size_t>(total), options.mask_token);

  MaskSpec mask;
  mask.kind = MaskKind::kBlockCausal;
  mask.block_size = block;
  std::vector<KVCache> caches;
  // Runs tokens[begin, end) (cached: over the committed cache; uncached: the whole prefix
  // [0, end) from scratch) and returns the logits of rows [begin, end).
  auto run = [&](int64_t begin, int64_t end, bool commit) {
    ForwardOptions forward;
    forward.mask = mask;
    const int64_t from = options.use_cache ? begin : 0;
    auto tokens =
        torch::tensor(std::vector<int64_t>(out.tokens.begin() + from, out.tokens.begin() + end),
                      long_options)
            .unsqueeze(0);
    forward.positions = torch::arange(from, end, long_options);
    if (options.use_cache) {
      forward.caches = &caches;
      forward.cache_commit = commit;
    }
    ++out.forward_passes;
    auto logits = model.forward(tokens, forward).logits[0];
    return logits.narrow(0, begin - from, end - begin);
  };

  // Whole prompt blocks are final: commit them to the cache in one pass.
  int64_t block_start = (out.prompt_length / block) * block;
  if (options.use_cache && block_start > 0) run(0, block_start, /*commit=*/true);
  for (; block_start < total; block_start += block) {
    const int64_t block_end = std::min(block_start + block, total);
    while (true) {
      std::vector<int64_t> masked;  // offsets in the block still to generate
      for (int64_t i = std::max(block_start, out.prompt_length); i < block_end; ++i)
        if (out.tokens[static_cast<size_t>(i)] == options.mask_token)
          masked.push_back(i - block_start);
      // Generated positions are never re-masked (SUBS never yields [MASK]): done when none left.
      if (masked.empty()) break;
      auto logits = subs_logits(run(block_start, block_end, /*commit=*/false), options.mask_token);
      Choice choice = choose_tokens(logits, options.temperature, generator);
      auto token = choice.token.accessor<int64_t, 1>();
      auto confidence = choice.confidence.accessor<double, 1>();
      std::vector<int64_t> commit;
      if (options.sampler == "first_hitting") {
        const int64_t pick =
            torch::randint(static_cast<int64_t>(masked.size()), {1}, generator).item<int64_t>();
        commit.push_back(masked[static_cast<size_t>(pick)]);
      } else {
        int64_t best = masked.front();
        for (int64_t i : masked) {
          if (confidence[i] >= options.threshold) commit.push_back(i);
          if (confidence[i] > confidence[best]) best = i;
        }
        if (commit.empty()) commit.push_back(best);
      }
      for (int64_t i : commit) out.tokens[static_cast<size_t>(block_start + i)] = token[i];
    }
    // The block is final: one committing pass, unless nothing follows it.
    if (options.use_cache && block_end < total) run(block_start, block_end, /*commit=*/true);
  }
  out.generated = options.max_new_tokens;
  out.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  out.tokens_per_second = out.seconds > 0 ? out.generated / out.seconds : 0.0;
  out.forwards_per_token =
      out.generated > 0 ? static_cast<double>(out.forward_passes) / out.generated : 0.0;
  return out;
}

}  // namespace attnlab
