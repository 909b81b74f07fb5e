// LSSA / LSSAR module output vs the float64 Python reference written from docs/methods.md §3
// (scripts/ref/lssa_ref.py), under every mask kind, with GQA and key padding. All cases go to
// one Python process (interpreter start-up dominates the test time).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>

#include "modules/attention/softplus_attention.h"
#include "modules/attention_entry.h"
#include "tests/support/softplus_ref.h"

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
  // Filled by prepare():
  AttentionOutput out;
  std::string in_path, out_path;
};

std::string describe(const ParityCase& c) {
  return c.attention + " " + c.mask + " B=" + std::to_string(c.block) +
         " H=" + std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) +
         (c.padding ? " padded" : "") + " p=" + std::to_string(c.power);
}

// Runs the C++ module on random inputs, saves inputs + parameters, returns the manifest line.
std::string prepare(ParityCase& c, int index) {
  torch::manual_seed(7 + index);
  const int64_t batch = 2, length = 11, d_model = 16;
  AttentionOptions options;
  options.d_model = d_model;
  options.n_heads = c.heads;
  options.n_kv_heads = c.kv_heads;
  YAML::Node own(YAML::NodeType::Map);
  if (c.attention == "lssar") own["power"] = c.power;  // LSSA has no re-weighting power
  options.module_options = bind_attention_options(c.attention, own);
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
    // Sequence 1 is left-padded by 4: under a causal mask its first rows see no real key.
    auto keep = torch::ones({batch, length}, torch::kBool);
    keep[1].narrow(0, 0, 4).fill_(false);
    context.mask.key_padding = keep;
    inputs["key_padding"] = keep;
  }
  for (const auto& p : module->named_parameters()) inputs[p.key()] = p.value();
  c.out = module->forward(x, context);
  c.in_path = scratch_path("lssa_in" + std::to_string(index));
  c.out_path = scratch_path("lssa_out" + std::to_string(index));
  save_tensors(inputs, c.in_path);
  return c.in_path + " " + c.out_path + " --heads " + std::to_string(c.heads) + " --kv-heads " +
         std::to_string(c.kv_heads) + " --mask " + c.mask + " --block " + std::to_string(c.block) +
         " --power " + std::to_string(c.power) + (c.attention == "lssar" ? " --reweight" : "");
}

}  // namespace

TEST(SoftplusParity, EveryMaskKindMatchesPythonReferenceFloat64) {
  REQUIRE_PYTHON_WITH("torch");
  std::vector<ParityCase> cases{
      {"lssa", "causal", 0, 2, 2, false, 15},         {"lssar", "causal", 0, 2, 2, false, 15},
      {"lssar", "causal", 0, 4, 2, false, 3},         {"lssa", "bidirectional", 0, 2, 1, false, 15},
      {"lssar", "bidirectional", 0, 2, 2, false, 15}, {"lssar", "block_causal", 3, 2, 2, false, 15},
      {"lssa", "block_causal", 4, 2, 2, true, 15},    {"lssar", "causal", 0, 2, 2, true, 15},
      {"lssar", "block_causal", 4, 2, 2, true, 15}};
  const std::string manifest = scratch_path("lssa_manifest");
  {
    std::ofstream lines(manifest);
    for (size_t i = 0; i < cases.size(); ++i)
      lines << prepare(cases[i], static_cast<int>(i)) << "\n";
  }
  const std::string cmd = "'" + ::attnlab::testing::project_python() + "' " +
                          std::string(ATTNLAB_SOURCE_DIR) + "/scripts/ref/lssa_ref.py --manifest " +
                          manifest;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::remove(manifest.c_str());
  for (auto& c : cases) {
    SCOPED_TRACE(describe(c));
    auto ref = load_tensors(c.out_path);
    std::remove(c.in_path.c_str());
    std::remove(c.out_path.c_str());
    EXPECT_TRUE(torch::allclose(c.out.probs, ref["probs"], 1e-10, 1e-12))
        << (c.out.probs - ref["probs"]).abs().max().item<double>();
    EXPECT_TRUE(torch::allclose(c.out.y, ref["y"], 1e-10, 1e-12))
        << (c.out.y - ref["y"]).abs().max().item<double>();
    if (c.padding && c.mask == "causal")  // fully padded rows (0..3 of sequence 1) give zeros
      EXPECT_EQ(c.out.probs[1].narrow(1, 0, 4).abs().sum().item<double>(), 0.0);
  }
}
