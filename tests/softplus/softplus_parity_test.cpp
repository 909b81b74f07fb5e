// LSSA / LSSAR module output vs the float64 Python reference written from methods.md §3
// (scripts/ref/lssa_ref.py), under every mask kind, with GQA and key padding.
#include <gtest/gtest.h>

#include "modules/attention/softplus_attention.h"
#include "tests/softplus/python_ref.h"

using namespace attnlab;
using namespace attnlab::testing;

namespace {

struct ParityCase {
  std::string attention;  // lssa | lssar
  std::string mask;
  int64_t block;
  int64_t heads, kv_heads;
  bool padding;
  double power;
};

void run_parity(const ParityCase& c) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 has no torch";
  torch::manual_seed(7);
  const int64_t batch = 2, length = 11, d_model = 16;
  AttentionOptions options;
  options.d_model = d_model;
  options.n_heads = c.heads;
  options.n_kv_heads = c.kv_heads;
  options.params["power"] = c.power;
  auto module = make_attention(c.attention, options);
  module->to(torch::kDouble);
  auto x = torch::randn({batch, length, d_model}, torch::kDouble);
  AttentionContext context;
  context.mask.kind = parse_mask_kind(c.mask);
  context.mask.block_size = c.block;
  context.positions = torch::arange(length);
  context.need_probs = true;
  std::map<std::string, torch::Tensor> inputs{{"x", x}, {"positions", context.positions}};
  if (c.padding) {
    // Sequence 1 is left-padded by 4: its first rows (causal) see no real key at all.
    auto keep = torch::ones({batch, length}, torch::kBool);
    keep[1].narrow(0, 0, 4).fill_(false);
    context.mask.key_padding = keep;
    inputs["key_padding"] = keep;
  }
  for (const auto& p : module->named_parameters()) inputs[p.key()] = p.value();
  auto out = module->forward(x, context);

  const std::string in_path = scratch_path("lssa_in"), out_path = scratch_path("lssa_out");
  save_tensors(inputs, in_path);
  std::string cmd = "/usr/bin/python3 " + std::string(ATTNLAB_SOURCE_DIR) +
                    "/scripts/ref/lssa_ref.py " + in_path + " " + out_path + " --heads " +
                    std::to_string(c.heads) + " --kv-heads " + std::to_string(c.kv_heads) +
                    " --mask " + c.mask + " --block " + std::to_string(c.block) + " --power " +
                    std::to_string(c.power) + (c.attention == "lssar" ? " --reweight" : "");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto ref = load_tensors(out_path);
  std::remove(in_path.c_str());
  std::remove(out_path.c_str());
  EXPECT_TRUE(torch::allclose(out.probs, ref["probs"], 1e-10, 1e-12))
      << (out.probs - ref["probs"]).abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(out.y, ref["y"], 1e-10, 1e-12))
      << (out.y - ref["y"]).abs().max().item<double>();
  if (c.padding) {  // fully padded rows give zero attention (causal/block-causal rows 0..3)
    if (c.mask == "causal") EXPECT_EQ(out.probs[1].narrow(1, 0, 4).abs().sum().item<double>(), 0.0);
  }
}

}  // namespace

TEST(SoftplusParity, LssaCausal) { run_parity({"lssa", "causal", 0, 2, 2, false, 15}); }
TEST(SoftplusParity, LssarCausal) { run_parity({"lssar", "causal", 0, 2, 2, false, 15}); }
TEST(SoftplusParity, LssarCausalPower3Gqa) { run_parity({"lssar", "causal", 0, 4, 2, false, 3}); }
TEST(SoftplusParity, LssaBidirectional) {
  run_parity({"lssa", "bidirectional", 0, 2, 1, false, 15});
}
TEST(SoftplusParity, LssarBidirectional) {
  run_parity({"lssar", "bidirectional", 0, 2, 2, false, 15});
}
TEST(SoftplusParity, LssarBlockCausal) {
  run_parity({"lssar", "block_causal", 3, 2, 2, false, 15});
}
TEST(SoftplusParity, LssaBlockCausalPadded) {
  run_parity({"lssa", "block_causal", 4, 2, 2, true, 15});
}
TEST(SoftplusParity, LssarCausalPadded) { run_parity({"lssar", "causal", 0, 2, 2, true, 15}); }
