// See sampling.h.
#include "inference/sampling.h"

#include <chrono>
#include <string>

#include "common/error.h"

namespace attnlab {

std::vector<int64_t> encode_prompt(const Tokenizer& tokenizer, const std::string& prompt) {
  std::vector<int64_t> ids;
  for (int32_t id : tokenizer.encode(prompt)) ids.push_back(id);
  if (ids.empty()) ids.push_back(tokenizer.bos());
  return ids;
}

torch::Tensor filter_logits(const torch::Tensor& logits, int64_t top_k, double top_p) {
  auto out = logits.clone();
  const double neg_inf = -std::numeric_limits<double>::infinity();
  if (top_k > 0 && top_k < out.size(-1)) {
    auto kth = std::get<0>(out.topk(top_k)).select(-1, top_k - 1);
    out.masked_fill_(out < kth, neg_inf);
  }
  if (top_p < 1.0) {
    auto sorted = out.sort(/*dim=*/-1, /*descending=*/true);
    auto values = std::get<0>(sorted), indices = std::get<1>(sorted);
    auto cumulative = torch::softmax(values, -1).cumsum(-1);
    // Drop a token when the mass before it already reaches top_p (the first token always stays).
    auto drop = (cumulative - torch::softmax(values, -1)) >= top_p;
    out.index_put_({indices.masked_select(drop)}, neg_inf);
  }
  return out;
}

SampleResult generate(GptImpl& model, const std::vector<int64_t>& prompt,
                      const SampleOptions& options) {
  check_user(!prompt.empty(), "sample: the prompt must contain at least one token");
  check_user(options.temperature >= 0, "sample.temperature must be >= 0");
  check_user(options.top_p > 0 && options.top_p <= 1, "sample.top_p must be in (0, 1]");
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  auto device = model.embed->weight.device();
  auto generator = at::detail::createCPUGenerator(options.seed);
  std::vector<KVCache> caches;
  ForwardOptions forward;
  forward.caches = &caches;
  SampleResult result;
  auto start = std::chrono::steady_clock::now();
  auto input = torch::tensor(prompt, torch::kLong).unsqueeze(0).to(device);
  for (int64_t i = 0; i < options.max_new_tokens; ++i) {
    auto logits =
        model.forward(input, forward).logits.select(1, -1).squeeze(0).to(torch::kFloat).cpu();
    ++result.forward_passes;
    check_user(logits.isfinite().all().item<bool>(),
               "sample: the model gives non-finite logits at generated token " + std::to_string(i) +
                   " (its weights or activations overflow); sample from an earlier checkpoint");
    int64_t next;
    if (options.temperature == 0.0) {
      next = logits.argmax().item<int64_t>();
    } else {
      auto filtered = filter_logits(logits / options.temperature, options.top_k, options.top_p);
      next = torch::multinomial(torch::softmax(filtered, -1), 1, false, generator).item<int64_t>();
    }
    result.tokens.push_back(next);
    if (options.on_token) options.on_token(static_cast<int64_t>(result.tokens.size()));
    if (next == options.stop_token) break;
    input = torch::full({1, 1}, next, torch::TensorOptions().dtype(torch::kLong).device(device));
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.tokens_per_second = result.tokens.size() / std::max(result.seconds, 1e-9);
  if (was_training) model.train();
  return result;
}

}  // namespace attnlab
