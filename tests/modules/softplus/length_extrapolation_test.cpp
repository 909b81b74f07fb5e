// Evaluating beyond the training length (experiments/length_extrapolation): a GPT built with
// model.max_seq_len = 16 runs at T = 96 for mha and lssar without capping or erroring. RoPE is
// computed for the actual positions (mha logits are invariant to shifting all positions, which
// they would not be if positions were clipped at max_seq_len), and causal prefixes are unchanged
// by the longer context (a model evaluated at 6x its length scores its first 16 tokens exactly as
// at 16).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "modules/attention_entry.h"
#include "modules/gpt.h"

using namespace attnlab;

namespace {

constexpr int64_t kShort = 16, kLong = 96, kVocab = 40;

Gpt short_context_gpt(const std::string& attention) {
  GptOptions o;
  o.vocab_size = kVocab;
  o.d_model = 16;
  o.n_layers = 2;
  o.n_heads = 2;
  o.max_seq_len = kShort;
  o.attention = attention;
  o.attention_module_options = bind_attention_options(
      attention,
      YAML::Load(attention == "lssar" ? "{rope: true, power: 15, free_rows: 3}" : "{rope: true}"));
  torch::manual_seed(11);
  Gpt model(o);
  model->to(torch::kDouble);
  model->eval();
  return model;
}

torch::Tensor logits_at(Gpt& model, const torch::Tensor& tokens, int64_t first_position) {
  ForwardOptions f;
  f.positions = torch::arange(first_position, first_position + tokens.size(1));
  return model->forward(tokens, f).logits;
}

}  // namespace

TEST(LengthExtrapolation, LongerThanMaxSeqLenIsNeitherCappedNorAnError) {
  torch::NoGradGuard no_grad;
  auto tokens = torch::randint(0, kVocab, {2, kLong}, at::detail::createCPUGenerator(5));
  for (const std::string attention : {"mha", "lssar"}) {
    auto model = short_context_gpt(attention);
    auto full = logits_at(model, tokens, 0);
    ASSERT_EQ(full.size(1), kLong) << attention;
    EXPECT_TRUE(torch::isfinite(full).all().item<bool>()) << attention;
    auto prefix = logits_at(model, tokens.narrow(1, 0, kShort), 0);
    EXPECT_TRUE(torch::allclose(full.narrow(1, 0, kShort), prefix, 1e-10, 1e-12)) << attention;
    // Positions past max_seq_len must still be distinct positions: later tokens see different
    // contexts, so their logits differ from the first ones.
    EXPECT_FALSE(torch::allclose(full.narrow(1, kLong - kShort, kShort), prefix, 1e-3, 1e-3));
  }
  // mha's only position signal is RoPE, which is relative: shifting every position by 1000
  // (far beyond max_seq_len) leaves the logits unchanged up to rounding.
  auto mha = short_context_gpt("mha");
  EXPECT_TRUE(torch::allclose(logits_at(mha, tokens, 1000), logits_at(mha, tokens, 0), 1e-8, 1e-9));
}
