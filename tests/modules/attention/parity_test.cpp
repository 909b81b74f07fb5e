// Parity of `attnlab probe` output (composed config -> one attention layer, float64 forward +
// backward) with the Python references written from docs/methods.md (scripts/ref/moh_ref.py,
// diff_ref.py): same parameters -> same y, attention maps, aux losses and gradients.
#include <gtest/gtest.h>

#include <cstdio>

#include "config/config.h"
#include "modules/attention/diff.h"
#include "probes/probe.h"
#include "tests/modules/attention/attention_test_util.h"

using namespace attnlab;
using namespace attnlab::attention_test;

namespace {

// Composes the shipped configs with `overrides` (+ float64 probe into a scratch file), runs the
// probe and the reference script; returns the script's exit status.
int probe_and_check(const std::string& tag, std::vector<std::string> overrides,
                    const std::string& script, const std::string& args) {
  const std::string path = scratch(tag);
  overrides.push_back("probe.dtype=float64");
  overrides.push_back("probe.out=" + path);
  config::ComposeRequest request;
  request.overrides = overrides;
  request.config_dir = std::string(ATTNLAB_SOURCE_DIR) + "/configs";
  run_probe(config::compose(request));
  const int status = run_reference(script, path, args + " --tol 1e-9");
  std::remove(path.c_str());
  return status;
}

struct MohCase {
  std::string tag;
  int64_t heads, shared, k;
  std::string router, mask;
  bool training;
};

void check_moh(const MohCase& c) {
  REQUIRE_PYTHON_WITH("torch");
  std::vector<std::string> overrides{
      "attention=moh",
      "model.d_model=24",
      "model.n_heads=" + std::to_string(c.heads),
      "attention.shared_heads=" + std::to_string(c.shared),
      "attention.routed_k=" + std::to_string(c.k),
      "attention.router=" + c.router,
      "model.mask=" + c.mask,
      "model.block_size=3",
      "probe.seq_len=9",
      std::string("probe.training=") + (c.training ? "true" : "false")};
  const std::string args = "--heads " + std::to_string(c.heads) + " --shared " +
                           std::to_string(c.shared) + " --routed-k " + std::to_string(c.k) +
                           " --router " + c.router + " --mask " + c.mask + " --block 3" +
                           (c.training ? " --training" : "");
  EXPECT_EQ(probe_and_check("moh_" + c.tag, overrides, "moh_ref.py", args), 0) << c.tag;
}

struct DiffCase {
  std::string tag, name;
  int64_t heads, kv_heads, signal, noise, kv, layer;
  std::string rope_style, mask;
};

void check_diff(const DiffCase& c) {
  REQUIRE_PYTHON_WITH("torch");
  std::vector<std::string> overrides{"attention=" + c.name,
                                     "model.d_model=24",
                                     "model.n_heads=" + std::to_string(c.heads),
                                     "model.n_kv_heads=" + std::to_string(c.kv_heads),
                                     "model.n_layers=8",
                                     "probe.layer_index=" + std::to_string(c.layer),
                                     "model.mask=" + c.mask,
                                     "model.block_size=4",
                                     "probe.seq_len=10"};
  double lambda_init = diff_lambda_init(c.layer, 0.0);
  if (c.name == "gda") {
    overrides.push_back("attention.n_signal=" + std::to_string(c.signal));
    overrides.push_back("attention.n_noise=" + std::to_string(c.noise));
    overrides.push_back("attention.n_kv_pairs=" + std::to_string(c.kv));
    lambda_init = diff_lambda_init(c.layer, -1.0);  // Motif convention (gda.yaml default)
  }
  char lam[64];
  std::snprintf(lam, sizeof lam, "%.17g", lambda_init);
  const std::string args = "--signal " + std::to_string(c.signal) + " --noise " +
                           std::to_string(c.noise) + " --kv " + std::to_string(c.kv) +
                           " --lambda-init " + lam + " --rope-style " + c.rope_style + " --mask " +
                           c.mask + " --block 4";
  EXPECT_EQ(probe_and_check(c.name + "_" + c.tag, overrides, "diff_ref.py", args), 0) << c.tag;
}

}  // namespace

TEST(AttentionParity, MohLearnedTraining) {
  check_moh({"learned_train", 6, 2, 2, "learned", "causal", true});
}
TEST(AttentionParity, MohLearnedEvalBidirectional) {
  check_moh({"learned_eval", 6, 2, 2, "learned", "bidirectional", false});
}
TEST(AttentionParity, MohNoSharedHeads) {
  check_moh({"no_shared", 4, 0, 2, "learned", "causal", true});
}
TEST(AttentionParity, MohAllShared) {
  check_moh({"all_shared", 4, 4, 0, "learned", "block_causal", true});
}
TEST(AttentionParity, MohOneSharedHead) {
  check_moh({"one_shared", 4, 1, 1, "learned", "causal", true});
}
TEST(AttentionParity, MohQnormTrainingSte) {
  check_moh({"qnorm_train", 6, 2, 2, "qnorm", "causal", true});
}
TEST(AttentionParity, MohQnormEval) {
  check_moh({"qnorm_eval", 6, 2, 2, "qnorm", "causal", false});
}

TEST(AttentionParity, DiffCausalDepth2) {
  check_diff({"causal", "diff", 4, 4, 2, 2, 2, 2, "interleaved", "causal"});
}
TEST(AttentionParity, DiffGqaBlockCausal) {
  check_diff({"gqa", "diff", 6, 2, 3, 3, 1, 5, "interleaved", "block_causal"});
}
TEST(AttentionParity, GdaGroup3) {
  check_diff({"g3", "gda", 4, 0, 3, 1, 1, 0, "rotate_half", "causal"});
}
TEST(AttentionParity, GdaGroup2TwoKvPairs) {
  check_diff({"g2", "gda", 6, 0, 4, 2, 2, 3, "rotate_half", "bidirectional"});
}
