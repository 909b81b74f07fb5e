// The run-level commands end to end through the real `attnlab` binary: train a tiny model, then
// eval (at two lengths, one beyond training), sample (autoregressive with a KV cache), and a
// masked-diffusion fine-tune from the AR run (AR -> dLM via init_from) sampled block-wise.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/attnlab_command.h"

namespace fs = std::filesystem;

namespace {

using attnlab::test::CommandRun;
using attnlab::test::run_attnlab;

const std::string kTiny =
    " model.d_model=32 model.n_layers=2 model.n_heads=2 data.seq_len=32 data.batch_size=4"
    " data.max_documents=20 trainer.eval_batches=2 trainer.threads=1 trainer.progress=none"
    " scheduler.warmup_steps=2";

}  // namespace

TEST(Commands, TrainEvalSampleAndDiffusionFineTune) {
  const fs::path root = fs::path(ATTNLAB_BINARY_DIR) / "test_train_tmp" / "commands";
  fs::remove_all(root);
  const std::string ar = (root / "ar").string(), dlm = (root / "dlm").string();

  CommandRun train = run_attnlab("train run.dir=" + ar + " trainer.max_steps=6 trainer.sample_tokens=20" + kTiny);
  ASSERT_EQ(train.code, 0) << train.output;
  EXPECT_NE(train.output.find("final: step 6"), std::string::npos) << train.output;
  EXPECT_NE(train.output.find("--- sample"), std::string::npos) << train.output;
  EXPECT_TRUE(fs::exists(fs::path(ar) / "result.json"));
  EXPECT_TRUE(fs::exists(fs::path(ar) / "metrics.jsonl"));
  EXPECT_TRUE(fs::exists(fs::path(ar) / "git.txt"));

  CommandRun eval = run_attnlab("eval run_dir=" + ar + " eval.seq_lens=[32,64] eval.batches=2");
  ASSERT_EQ(eval.code, 0) << eval.output;
  std::ifstream eval_file(fs::path(ar) / "eval.json");
  auto results = nlohmann::json::parse(eval_file)["results"];
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1]["seq_len"].get<int>(), 64);
  EXPECT_TRUE(std::isfinite(results[1]["val_loss"].get<double>()));

  CommandRun sample = run_attnlab("sample run_dir=" + ar + " prompt=Call max_new_tokens=15 top_k=5 top_p=0.9");
  ASSERT_EQ(sample.code, 0) << sample.output;
  EXPECT_NE(sample.output.find("tokens/s"), std::string::npos) << sample.output;

  CommandRun bad = run_attnlab("sample run_dir=" + ar + " temperatur=0.5");
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("temperatur"), std::string::npos) << bad.output;

  // AR -> masked-diffusion LM: same weights, block-causal attention, diffusion objective.
  CommandRun convert = run_attnlab("train run.dir=" + dlm + " init_from=" + ar +
                        " objective=masked_diffusion attention.mask=block_causal"
                        " attention.block_size=8 trainer.max_steps=4" + kTiny);
  ASSERT_EQ(convert.code, 0) << convert.output;
  CommandRun dlm_sample = run_attnlab("sample run_dir=" + dlm + " prompt=Call max_new_tokens=16 block_size=8");
  ASSERT_EQ(dlm_sample.code, 0) << dlm_sample.output;
  EXPECT_NE(dlm_sample.output.find("forward passes per token"), std::string::npos)
      << dlm_sample.output;
}
