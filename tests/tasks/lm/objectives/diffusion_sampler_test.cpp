// Block diffusion sampler: output free of [MASK], cached == uncached decoding, pass counts of
// the first-hitting and confidence samplers.
#include "inference/diffusion_sampler.h"

#include <gtest/gtest.h>

#include "common/error.h"

using namespace attnlab;

namespace {

constexpr int64_t kVocab = 11, kMask = 10;

Gpt tiny_gpt() {
  GptOptions o;
  o.vocab_size = kVocab;
  o.d_model = 16;
  o.n_layers = 2;
  o.n_heads = 2;
  o.max_seq_len = 64;
  o.mask.kind = MaskKind::kBlockCausal;
  o.mask.block_size = 4;
  Gpt model(o);
  model->to(torch::kDouble);  // float64 so cached/uncached rounding cannot flip an arg-max
  return model;
}

}  // namespace

TEST(DiffusionSampler, CachedAndUncachedAgreeAndNoMaskRemains) {
  for (const std::string sampler : {"confidence", "first_hitting"}) {
    for (double temperature : {0.0, 1.0}) {
      torch::manual_seed(1);
      auto model = tiny_gpt();
      DiffusionSampleOptions o;
      o.max_new_tokens = 13;  // partial last block; prompt of 6 ends mid-block
      o.sampler = sampler;
      o.threshold = 0.2;
      o.temperature = temperature;
      o.mask_token = kMask;
      std::vector<int64_t> prompt{0, 3, 5, 1, 2, 7};
      o.generator = at::detail::createCPUGenerator(42);
      auto cached = diffusion_generate(*model, prompt, o);
      o.use_cache = false;
      o.generator = at::detail::createCPUGenerator(42);
      auto uncached = diffusion_generate(*model, prompt, o);
      ASSERT_EQ(cached.tokens.size(), 19u);
      EXPECT_EQ(cached.tokens, uncached.tokens) << sampler << " T=" << temperature;
      EXPECT_EQ(std::vector<int64_t>(cached.tokens.begin(), cached.tokens.begin() + 6), prompt);
      for (int64_t token : cached.tokens) EXPECT_NE(token, kMask);
      EXPECT_EQ(cached.generated, 13);
      EXPECT_GT(cached.tokens_per_second, 0.0);
      if (sampler == "first_hitting") {
        // One pass per generated token without a cache; with it, plus the prompt-commit pass and
        // one commit per finished block except the last (blocks [4,8) [8,12) [12,16) [16,19)).
        EXPECT_EQ(uncached.forward_passes, 13);
        EXPECT_EQ(cached.forward_passes, 13 + 1 + 3);
      }
    }
  }
}

TEST(DiffusionSampler, ZeroThresholdFillsABlockPerPass) {
  torch::manual_seed(2);
  auto model = tiny_gpt();
  DiffusionSampleOptions o;
  o.max_new_tokens = 15;
  o.threshold = 0.0;  // every masked position qualifies
  o.mask_token = kMask;
  o.use_cache = false;
  auto out = diffusion_generate(*model, {0}, o);  // blocks [0,4) (3 new) [4,8) [8,12) [12,16)
  EXPECT_EQ(out.forward_passes, 4);
  EXPECT_NEAR(out.forwards_per_token, 4.0 / 15.0, 1e-12);
  for (int64_t token : out.tokens) EXPECT_NE(token, kMask);
}

TEST(DiffusionSampler, RejectsBadOptions) {
  auto model = tiny_gpt();
  DiffusionSampleOptions o;
  o.mask_token = kMask;
  EXPECT_THROW(diffusion_generate(*model, {}, o), UserError);
  o.sampler = "greedy";
  EXPECT_THROW(diffusion_generate(*model, {0}, o), UserError);
  o.sampler = "confidence";
  o.mask_token = -1;
  EXPECT_THROW(diffusion_generate(*model, {0}, o), UserError);
}
