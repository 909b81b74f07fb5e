// `attnlab eval` on masked-diffusion settings (in process, through the command table): a tiny AR
// run's weights evaluated as a dLM report the NELBO per predicted token (the objective's loss
// rescaled by T / (T − 1), position 0 being given context), reproducibly (fixed seed), averaged
// over eval.t_samples draws, and with bits per byte consistent with the nats.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/command.h"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

int run_command(const std::string& name, std::vector<std::string> overrides) {
  CommandArgs args;
  args.overrides = std::move(overrides);
  args.config_dir = std::string(ATTNLAB_SOURCE_DIR) + "/configs";
  return command_registry().get(name).run(args);
}

nlohmann::json eval_json(const std::string& run_dir, std::vector<std::string> overrides) {
  overrides.push_back("run_dir=" + run_dir);
  overrides.push_back("eval.seq_lens=[32]");
  overrides.push_back("eval.batches=2");
  EXPECT_EQ(run_command("eval", overrides), 0);
  std::ifstream in(fs::path(run_dir) / "eval.json");
  return nlohmann::json::parse(in);
}

}  // namespace

TEST(EvalBound, DiffusionEvalReportsReproducibleNelboPerPredictedToken) {
  const fs::path root = fs::path(ATTNLAB_BINARY_DIR) / "test_diffusion_tmp" / "eval_bound";
  fs::remove_all(root);
  const std::string ar = (root / "ar").string();
  ASSERT_EQ(run_command("train",
                        {"run.dir=" + ar, "trainer.max_steps=3", "model.d_model=32",
                         "model.n_layers=2", "model.n_heads=2", "data.seq_len=32",
                         "data.batch_size=4", "data.max_documents=20", "trainer.eval_batches=1",
                         "trainer.threads=1", "trainer.progress=none", "scheduler.warmup_steps=1"}),
            0);
  const std::vector<std::string> as_dlm{"objective.name=masked_diffusion",
                                        "model.mask=block_causal", "model.block_size=8"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), as_dlm.begin(), as_dlm.end());
    return extra;
  };
  auto three = eval_json(ar, with({"eval.t_samples=3"}));
  EXPECT_EQ(three["objective"], "masked_diffusion");
  EXPECT_EQ(three["t_samples"], 3);
  const auto& row = three["results"][0];
  const double nelbo = row["val_loss"], objective = row["objective_loss"];
  ASSERT_TRUE(std::isfinite(nelbo));
  EXPECT_EQ(row["predicted_tokens_per_window"], 31);
  EXPECT_NEAR(nelbo, objective * 32.0 / 31.0, 1e-12);
  EXPECT_NEAR(row["val_perplexity"].get<double>(), std::exp(nelbo), 1e-9);
  // Byte tokenizer: bits per byte = nats / ln 2 / (bytes per token, a little under 1 because of
  // the document separators), so it lies just above nats / ln 2.
  const double bits = nelbo / std::log(2.0), bpb = row["val_bits_per_byte"];
  EXPECT_GE(bpb, bits);
  EXPECT_LT(bpb, bits * 1.05);
  // Fixed seed: the same command gives the same bound; another number of draws another estimate.
  auto again = eval_json(ar, with({"eval.t_samples=3"}));
  EXPECT_EQ(again["results"][0]["val_loss"].get<double>(), nelbo);
  auto one = eval_json(ar, with({"eval.t_samples=1"}));
  EXPECT_NE(one["results"][0]["val_loss"].get<double>(), nelbo);
  // Every token maskable (objective.ignore_bos=false): no rescaling.
  auto all = eval_json(ar, with({"eval.t_samples=1", "+objective.ignore_bos=false"}));
  EXPECT_EQ(all["results"][0]["val_loss"].get<double>(),
            all["results"][0]["objective_loss"].get<double>());
  // The AR evaluation of the same run is unchanged: exact NLL, no diffusion fields.
  auto ar_eval = eval_json(ar, {});
  EXPECT_EQ(ar_eval["objective"], "autoregressive");
  EXPECT_FALSE(ar_eval.contains("t_samples"));
  EXPECT_FALSE(ar_eval["results"][0].contains("objective_loss"));
  fs::remove_all(root);
}
