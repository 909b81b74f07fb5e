// Autoregressive text generation with a KV cache: one forward over the prompt, then one token per
// step. Temperature, top-k and nucleus (top-p) filtering follow nanoGPT / HF semantics:
// temperature 0 means greedy; top_k 0 and top_p 1 disable the filters. Non-finite logits are a
// UserError (never a multinomial abort).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "data/tokenizers/tokenizer.h"
#include "modules/gpt.h"

namespace attnlab {

struct SampleOptions {
  int64_t max_new_tokens = 200;
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  int64_t stop_token = -1;  // stop early when generated (e.g. EOS); -1 = never
  uint64_t seed = 1337;
  std::function<void(int64_t generated)> on_token;  // after each new token (e.g. a progress bar)
};

struct SampleResult {
  std::vector<int64_t> tokens;  // generated tokens only (prompt excluded)
  double seconds = 0.0;
  double tokens_per_second = 0.0;
  int64_t forward_passes = 0;
};

// Token ids of a text prompt; an empty encoding becomes [BOS] so generation has a first token.
std::vector<int64_t> encode_prompt(const Tokenizer& tokenizer, const std::string& prompt);

// Keeps the logits that survive top-k / top-p filtering, others become -inf. logits: [V].
torch::Tensor filter_logits(const torch::Tensor& logits, int64_t top_k, double top_p);

SampleResult generate(GptImpl& model, const std::vector<int64_t>& prompt,
                      const SampleOptions& options);

}  // namespace attnlab
