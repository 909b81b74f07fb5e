// Block-wise semi-autoregressive decoding for masked-diffusion LMs (docs/methods.md §4 "Sampling"):
// blocks of `block_size` positions (aligned to absolute positions, like the block-causal mask)
// are generated left to right. A block starts as [MASK] (prompt tokens that fall in it stay) and is
// filled over several forward passes by either
//   * `confidence` (Efficient-DLM / Fast-dLLM): commit every masked position whose predicted
//     token has probability ≥ τ (`threshold`), at least the most confident one; or
//   * `first_hitting` (bd3lms): commit one uniformly chosen masked position per pass, its token
//     sampled from p_θ.
// With `use_cache`, finished blocks live in a per-layer KV cache: each pass attends over the cache
// plus the current block without committing (cache_commit = false); once the block is final one
// committing pass appends it. Without the cache every pass re-runs the whole prefix under the
// block-causal mask (same result, more compute). SUBS: the [MASK] logit is −∞, so no [MASK] is
// ever produced.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "modules/gpt.h"

namespace attnlab {

struct DiffusionSampleOptions {
  int64_t max_new_tokens = 64;
  int64_t block_size = 0;              // 0 = the model's model.block_size
  std::string sampler = "confidence";  // confidence | first_hitting
  double threshold = 0.9;              // τ for `confidence`
  double temperature = 0.0;            // 0 = arg-max tokens; > 0 = sample from softmax(logits/T)
  int64_t mask_token = -1;             // the tokenizer's [MASK] id (required)
  bool use_cache = true;
  torch::Generator generator;  // CPU generator for position/token draws (default: global)
};

struct DiffusionSample {
  std::vector<int64_t> tokens;  // prompt followed by the generated tokens
  int64_t prompt_length = 0;
  int64_t generated = 0;
  int64_t forward_passes = 0;  // including the cache-committing passes
  double seconds = 0.0;
  double tokens_per_second = 0.0;
  double forwards_per_token = 0.0;
};

// Generates options.max_new_tokens tokens after `prompt` (non-empty, e.g. just BOS). Runs under
// NoGradGuard with the model in eval mode (its previous mode is restored). UserError on bad
// options.
DiffusionSample diffusion_generate(GptImpl& model, const std::vector<int64_t>& prompt,
                                   const DiffusionSampleOptions& options);

}  // namespace attnlab
