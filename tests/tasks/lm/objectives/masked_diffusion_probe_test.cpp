// The `masked_diffusion_loss` probe target end to end: composed config -> run_probe -> a file that
// is read back (by attnlab's own reader, and by Python's torch.load through
// tests/tasks/lm/objectives/masked_diffusion_probe_check.py with the project Python) and checked
// against an independent recomputation of the loss and its logit gradient.
#include <gtest/gtest.h>

#include <cstdio>

#include "config/config.h"
#include "io/weights_io.h"
#include "probes/probe.h"
#include "tests/support/softplus_ref.h"
#include "trainer/weight_sources.h"

using namespace attnlab;

namespace {

constexpr int64_t kByteMask = 259;  // configs/tokenizer/byte.yaml: MASK = 259 of 260 ids

// Composes the shipped configs with `overrides`, runs the probe into a scratch file, returns it.
std::string run_diffusion_probe(const std::string& tag, std::vector<std::string> overrides) {
  const std::string path = attnlab::testing::scratch_path("md_probe_" + tag) + ".pt";
  for (const char* o :
       {"probe.target=masked_diffusion_loss", "model.d_model=16", "model.n_layers=2",
        "model.n_heads=2", "probe.batch=3", "probe.seq_len=12", "probe.dtype=float64"})
    overrides.push_back(o);
  overrides.push_back("probe.out=" + path);
  config::ComposeRequest request;
  request.overrides = overrides;
  request.config_dir = std::string(ATTNLAB_SOURCE_DIR) + "/configs";
  EXPECT_EQ(run_probe(config::compose(request)), path);
  return path;
}

}  // namespace

TEST(MaskedDiffusionProbeTarget, DumpRecomputesToTheLossAndGradient) {
  const std::string path =
      run_diffusion_probe("block", {"objective=masked_diffusion", "objective.t_per=block",
                                    "model.mask=block_causal", "model.block_size=4"});
  StateDict d = read_weights(path);
  std::remove(path.c_str());
  for (const char* key :
       {"logits", "targets", "input", "masked", "t", "p", "loss", "logit_grad", "token_count"})
    ASSERT_TRUE(d.count(key)) << key;
  const auto& logits = d["logits"];
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{3, 12, 260}));
  auto masked = d["masked"].to(torch::kBool);
  auto x0 = d["targets"], t = d["t"];
  EXPECT_FALSE((x0 == kByteMask).any().item<bool>());
  EXPECT_TRUE(torch::equal(d["input"], torch::where(masked, torch::full_like(x0, kByteMask), x0)));
  EXPECT_FALSE(masked.select(1, 0).any().item<bool>());  // position 0 is never masked
  EXPECT_TRUE(masked.any().item<bool>());
  // t is drawn per block of model.block_size = 4 tokens.
  auto t_blocks = t.view({3, 3, 4});
  EXPECT_TRUE(torch::equal(t_blocks, t_blocks.select(2, 0).unsqueeze(-1).expand_as(t_blocks)));
  EXPECT_FALSE(
      torch::equal(t_blocks.select(2, 0).select(1, 0), t_blocks.select(2, 0).select(1, 1)));

  // Σ_masked CE(logits without the [MASK] column, x0) / t ÷ number of tokens, token by token.
  auto log_probs = torch::log_softmax(logits.narrow(-1, 0, kByteMask), -1);
  double expected = 0.0;
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t i = 0; i < 12; ++i)
      if (masked[b][i].item<bool>())
        expected -=
            log_probs[b][i][x0[b][i].item<int64_t>()].item<double>() / t[b][i].item<double>();
  expected /= 36.0;
  EXPECT_NEAR(d["loss"].item<double>(), expected, 1e-12);
  EXPECT_EQ(d["token_count"].item<double>(), 36.0);
  // Gradient of that sum w.r.t. a masked position's logits: (softmax − onehot) / (t · N), with
  // zero on the [MASK] column; unmasked positions get none.
  auto probs = log_probs.exp();
  auto onehot = torch::one_hot(x0, kByteMask).to(torch::kDouble);
  auto grad = (probs - onehot) / (t.unsqueeze(-1) * 36.0) * masked.unsqueeze(-1);
  EXPECT_TRUE(torch::allclose(d["logit_grad"].narrow(-1, 0, kByteMask), grad, 1e-12, 1e-14));
  EXPECT_EQ(d["logit_grad"].select(-1, kByteMask).abs().max().item<double>(), 0.0);
}

TEST(MaskedDiffusionProbeTarget, PythonTorchLoadRecomputesLossAndGradient) {
  REQUIRE_PYTHON_WITH("torch");
  const std::vector<std::string> block_causal{"model.mask=block_causal", "model.block_size=4"};
  // Default objective group (its objective.* defaults apply) and clean-context training layout.
  auto clean = block_causal;
  clean.insert(clean.end(), {"objective=masked_diffusion", "objective.clean_context=true"});
  const std::string first = run_diffusion_probe("sequence", block_causal);
  const std::string second = run_diffusion_probe("clean_context", clean);
  const std::string command = "'" + ::attnlab::testing::project_python() + "' " +
                              std::string(ATTNLAB_SOURCE_DIR) +
                              "/tests/tasks/lm/objectives/masked_diffusion_probe_check.py " +
                              std::to_string(kByteMask) + " " + first + " " + second;
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  std::remove(first.c_str());
  std::remove(second.c_str());
}
