// End-to-end training on a real corpus slice (Moby Dick): an interrupted-and-resumed run equals
// the uninterrupted one bitwise (losses and parameters); init_from loads weights partially;
// eval and sample run on the result.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "config/config.h"
#include "io/weights_io.h"
#include "tests/support/run_metrics.h"
#include "tests/support/train_runs.h"
#include "trainer/checkpoint.h"
#include "trainer/train_loop.h"
#include "trainer/weight_sources.h"

using namespace attnlab;
namespace fs = std::filesystem;

namespace {

std::string scratch(const std::string& name) { return attnlab::testing::scratch_run_dir(name); }

YAML::Node tiny_config(const std::string& run_dir, std::vector<std::string> extra = {}) {
  return attnlab::testing::compose_shipped(
      {"run.dir=" + run_dir, "model.d_model=32", "model.n_layers=2", "model.n_heads=2",
       "model.max_seq_len=32", "model.dropout=0.1", "data.seq_len=32", "data.batch_size=4",
       "data.max_documents=20", "trainer.max_steps=12", "trainer.eval_every=6",
       "trainer.eval_batches=2", "trainer.checkpoint_every=4", "trainer.threads=1",
       "trainer.progress=none", "scheduler.warmup_steps=3"},
      extra);
}

using attnlab::testing::train_losses;

// 12 steps straight and 5 + resume, both with `overrides` (which end up after the halt): the two
// runs log the same losses and end with the same weights, bit for bit. `resumed_dir` receives
// the halted-and-resumed run's directory.
void expect_resume_is_bitwise(const std::string& tag, const std::vector<std::string>& overrides,
                              std::string* resumed_dir = nullptr) {
  const std::string straight = scratch(tag + "_straight"), resumed = scratch(tag + "_resumed");
  if (resumed_dir != nullptr) *resumed_dir = resumed;
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), overrides.begin(), overrides.end());
    return extra;
  };
  TrainSummary a = train(tiny_config(straight, with({})), {}, {"test"});
  ASSERT_EQ(a.step, 12);
  train(tiny_config(resumed, with({"trainer.halt_at_step=5"})), {}, {"test"});
  TrainSummary b = train(tiny_config(resumed, with({})), {}, {"test"});
  ASSERT_EQ(b.step, 12);
  EXPECT_EQ(train_losses(straight), train_losses(resumed));
  const auto final_a = read_checkpoint_model_state(resolve_checkpoint(straight));
  const auto final_b = read_checkpoint_model_state(resolve_checkpoint(resumed));
  ASSERT_EQ(final_a.size(), final_b.size());
  for (const auto& [name, tensor] : final_a)
    EXPECT_TRUE(torch::equal(tensor, final_b.at(name))) << name;
}

}  // namespace

TEST(TrainResume, InterruptedRunMatchesUninterruptedBitwise) {
  const std::string straight = scratch("straight"), resumed = scratch("resumed");
  TrainSummary a = train(tiny_config(straight, {"trainer.log_every=1"}), {}, {"test"});
  ASSERT_EQ(a.step, 12);
  EXPECT_FALSE(a.interrupted);
  // Stop after step 5 (a checkpoint is written on stop), then resume to the end.
  TrainSummary first =
      train(tiny_config(resumed, {"trainer.log_every=1", "trainer.halt_at_step=5"}), {}, {"test"});
  EXPECT_TRUE(first.interrupted);
  EXPECT_EQ(first.step, 5);
  TrainSummary second = train(tiny_config(resumed, {"trainer.log_every=1"}), {}, {"test"});
  EXPECT_EQ(second.step, 12);

  const auto losses_a = train_losses(straight), losses_b = train_losses(resumed);
  ASSERT_EQ(losses_a.size(), 12u);
  ASSERT_EQ(losses_b.size(), 12u);  // metrics after the checkpoint were truncated on resume
  for (size_t i = 0; i < losses_a.size(); ++i)
    EXPECT_EQ(losses_a[i], losses_b[i]) << "step " << i + 1;
  EXPECT_EQ(a.val_loss, second.val_loss);

  auto params_a = read_checkpoint_model_state(resolve_checkpoint(straight));
  auto params_b = read_checkpoint_model_state(resolve_checkpoint(resumed));
  ASSERT_EQ(params_a.size(), params_b.size());
  for (const auto& [name, tensor] : params_a)
    EXPECT_TRUE(torch::equal(tensor, params_b.at(name))) << name;
}

TEST(TrainResume, InitFromLoadsMatchingWeightsAndReportsTheRest) {
  const std::string source = scratch("source"), target = scratch("finetune");
  train(tiny_config(source,
                    {"trainer.max_steps=2", "trainer.eval_every=0", "scheduler.warmup_steps=1"}),
        {}, {"test"});
  // A deeper model: blocks.0/1 load from the source, blocks.2 stays freshly initialised.
  // lr 0: the one step leaves the loaded weights untouched, so the checkpoint shows what loaded.
  auto config = tiny_config(target, {"model.n_layers=3", "trainer.max_steps=1", "optim.lr=0.0",
                                     "scheduler.warmup_steps=0", "init_from=" + source});
  TrainSummary summary = train(config, {}, {"test"});
  EXPECT_EQ(summary.step, 1);
  auto source_weights = read_weights(source);
  auto tuned = read_checkpoint_model_state(resolve_checkpoint(target));
  EXPECT_TRUE(torch::equal(source_weights.at("blocks.1.attn.q_proj.weight"),
                           tuned.at("blocks.1.attn.q_proj.weight")));
  EXPECT_EQ(tuned.count("blocks.2.attn.q_proj.weight"), 1u);
}

TEST(TrainResume, StrictInitFromRejectsAMismatchedModel) {
  const std::string source = scratch("strict_source");
  train(tiny_config(source,
                    {"trainer.max_steps=1", "trainer.eval_every=0", "scheduler.warmup_steps=0"}),
        {}, {"test"});
  auto config = tiny_config(scratch("strict_target"),
                            {"model.n_layers=3", "init_from=" + source, "init_strict=true"});
  EXPECT_THROW(train(config, {}, {"test"}), UserError);
}

TEST(TrainResume, InitFromMhaIntoMohCopiesProjections) {
  const std::string source = scratch("mha_source");
  train(tiny_config(source,
                    {"trainer.max_steps=1", "trainer.eval_every=0", "scheduler.warmup_steps=0"}),
        {}, {"test"});
  auto config = tiny_config(scratch("moh_target"),
                            {"attention=moh", "model.n_heads=4", "trainer.max_steps=1",
                             "optim.lr=0.0", "scheduler.warmup_steps=0", "init_from=" + source});
  train(config, {}, {"test"});
  auto mha = read_weights(source);
  auto moh =
      read_checkpoint_model_state(resolve_checkpoint(config["run"]["dir"].as<std::string>()));
  auto expected =
      torch::cat({mha.at("blocks.0.attn.q_proj.weight"), mha.at("blocks.0.attn.k_proj.weight"),
                  mha.at("blocks.0.attn.v_proj.weight")},
                 0);
  EXPECT_TRUE(torch::equal(moh.at("blocks.0.attn.qkv.weight"), expected));
  EXPECT_TRUE(
      torch::equal(moh.at("blocks.1.attn.proj.weight"), mha.at("blocks.1.attn.out_proj.weight")));
  EXPECT_TRUE(torch::equal(moh.at("embed.weight"), mha.at("embed.weight")));
}

// optim=sgd trains and resumes bitwise like AdamW; resuming a run with another optimizer than
// its checkpoints' is one clear error (LibTorch would assert on the foreign state).
TEST(TrainResume, SgdResumesBitwiseAndAnotherOptimizerIsRefused) {
  const std::vector<std::string> sgd = {"optim=sgd", "optim.lr=0.05", "trainer.log_every=1"};
  expect_resume_is_bitwise("sgd", sgd);
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), sgd.begin(), sgd.end());
    return extra;
  };

  const std::string adamw_run = scratch("adamw_then_sgd");
  train(tiny_config(adamw_run, {"trainer.halt_at_step=4"}), {}, {"test"});
  try {
    train(tiny_config(adamw_run, with({})), {}, {"test"});
    FAIL() << "resumed AdamW state with SGD";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find("holds adamw state but this run uses optim.name=sgd"),
              std::string::npos)
        << error.what();
  }
}

// optim=muon (Muon's momentum buffers and AdamW's moments in the checkpoint) resumes bitwise;
// resuming a muon run with adamw, or an adamw run with muon, is the one clear error.
TEST(TrainResume, MuonResumesBitwiseAndSwitchingOptimizerIsRefused) {
  const std::vector<std::string> muon = {"optim=muon", "optim.muon.weight_decay=0.01",
                                         "trainer.log_every=1"};
  std::string resumed;
  expect_resume_is_bitwise("muon", muon, &resumed);
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), muon.begin(), muon.end());
    return extra;
  };

  auto refused = [&](const YAML::Node& config, const std::string& expected) {
    try {
      train(config, {}, {"test"});
      ADD_FAILURE() << "resumed with another optimizer; expected: " << expected;
    } catch (const UserError& error) {
      EXPECT_NE(std::string(error.what()).find(expected), std::string::npos) << error.what();
    }
  };
  refused(tiny_config(resumed, {"trainer.max_steps=14"}),
          "holds muon state but this run uses optim.name=adamw");
  const std::string adamw_run = scratch("adamw_then_muon");
  train(tiny_config(adamw_run, {"trainer.halt_at_step=4"}), {}, {"test"});
  refused(tiny_config(adamw_run, with({})), "holds adamw state but this run uses optim.name=muon");
}

// model.attention_backend picks kernels, not an architecture: a run halted under the CPU kernels
// resumes under the device path (as a CPU run resumed on a GPU does) instead of being refused as
// another model.
TEST(TrainResume, AnotherAttentionBackendResumes) {
  const std::string dir = scratch("backend_switch");
  train(tiny_config(dir, {"model.attention_backend=native", "trainer.halt_at_step=4"}), {},
        {"test"});
  TrainSummary resumed = train(tiny_config(dir, {"model.attention_backend=sdpa"}), {}, {"test"});
  EXPECT_EQ(resumed.step, 12);
}
