// The run-level commands end to end through the real `attnlab` binary: train a tiny model, then
// eval (at two lengths, one beyond training), sample (autoregressive with a KV cache), and a
// masked-diffusion fine-tune from the AR run (AR -> dLM via init_from) sampled block-wise. The
// run's TensorBoard events, read back with the real `tensorboard` package, equal its metrics.jsonl;
// a finished run run again reports its result and writes nothing; --dry-run writes nothing; every
// shipped experiment file trains.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/support/attnlab_command.h"
#include "tests/support/python.h"

namespace fs = std::filesystem;

namespace {

using attnlab::test::CommandRun;
using attnlab::test::run_attnlab;

const std::string kTiny =
    " model.d_model=32 model.n_layers=2 model.n_heads=2 data.seq_len=32 data.batch_size=4"
    " data.max_documents=20 trainer.eval_batches=2 trainer.threads=1 trainer.progress=none"
    " scheduler.warmup_steps=2";

std::string file_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// What TensorBoard reads back from <log_dir> (scripts/read_tensorboard.py's JSON).
nlohmann::json read_tensorboard(const fs::path& log_dir) {
  const std::string command = "'" + attnlab::project_python() + "' '" +
                              std::string(ATTNLAB_SOURCE_DIR) + "/scripts/read_tensorboard.py' '" +
                              log_dir.string() + "'";
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  std::array<char, 4096> buffer{};
  while (pipe && fgets(buffer.data(), buffer.size(), pipe)) out += buffer.data();
  const int status = pipe ? pclose(pipe) : -1;
  EXPECT_EQ(status, 0) << out;
  return nlohmann::json::parse(out);
}

}  // namespace

TEST(Commands, TrainEvalSampleAndDiffusionFineTune) {
  const fs::path root = fs::path(ATTNLAB_BINARY_DIR) / "test_train_tmp" / "commands";
  fs::remove_all(root);
  const std::string ar = (root / "ar").string(), dlm = (root / "dlm").string();

  CommandRun train = run_attnlab("train run.dir=" + ar +
                                 " trainer.max_steps=6 trainer.sample.max_new_tokens=20" + kTiny);
  ASSERT_EQ(train.code, 0) << train.output;
  EXPECT_NE(train.output.find("final: step 6"), std::string::npos) << train.output;
  EXPECT_NE(train.output.find("--- sample"), std::string::npos) << train.output;
  EXPECT_TRUE(fs::exists(fs::path(ar) / "result.json"));
  EXPECT_TRUE(fs::exists(fs::path(ar) / "metrics.jsonl"));
  EXPECT_TRUE(fs::exists(fs::path(ar) / "git.txt"));

  // TensorBoard: every number of metrics.jsonl is a scalar at its step (float32); config and
  // sample are texts.
  REQUIRE_PYTHON_WITH("tensorboard");
  const nlohmann::json tb = read_tensorboard(fs::path(ar) / "tensorboard");
  int compared = 0;
  std::istringstream metric_lines(file_text(fs::path(ar) / "metrics.jsonl"));
  for (std::string line; std::getline(metric_lines, line);) {
    const nlohmann::json record = nlohmann::json::parse(line);
    const int64_t step = record["step"].get<int64_t>();
    for (const auto& item : record.items()) {
      if (item.key() == "step") continue;
      ASSERT_TRUE(tb["scalars"].contains(item.key())) << item.key() << " not in TensorBoard";
      bool found = false;
      for (const auto& point : tb["scalars"][item.key()])
        if (point[0].get<int64_t>() == step) {
          EXPECT_EQ(point[1].get<double>(),
                    static_cast<double>(static_cast<float>(item.value().get<double>())))
              << item.key() << " at step " << step;
          found = true;
        }
      EXPECT_TRUE(found) << item.key() << " at step " << step << " not in TensorBoard";
      ++compared;
    }
  }
  EXPECT_GE(compared, 10);  // step 6's train record and the final val record
  EXPECT_TRUE(tb["scalars"].contains("train/loss") && tb["scalars"].contains("val/loss"));
  EXPECT_NE(tb["texts"]["config"][0][1].get<std::string>().find("d_model: 32"), std::string::npos);
  ASSERT_TRUE(tb["texts"].contains("sample")) << tb["texts"].dump();
  EXPECT_EQ(tb["hparams"]["trainer.max_steps"], 6.0);
  EXPECT_EQ(tb["hparams_status"], "STATUS_SUCCESS");

  // The same command again: the finished run's result, nothing trained or appended.
  const std::string metrics_before = file_text(fs::path(ar) / "metrics.jsonl");
  const std::string config_before = file_text(fs::path(ar) / "config.yaml");
  CommandRun again = run_attnlab("train run.dir=" + ar +
                                 " trainer.max_steps=6 trainer.sample.max_new_tokens=20" + kTiny);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("final: step 6"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("had finished"), std::string::npos) << again.output;
  EXPECT_EQ(again.output.find(" 0 tok/s"), std::string::npos) << again.output;
  EXPECT_EQ(file_text(fs::path(ar) / "metrics.jsonl"), metrics_before);
  EXPECT_EQ(file_text(fs::path(ar) / "config.yaml"), config_before);

  CommandRun eval = run_attnlab("eval run_dir=" + ar + " eval.seq_lens=[32,64] eval.batches=2");
  ASSERT_EQ(eval.code, 0) << eval.output;
  std::ifstream eval_file(fs::path(ar) / "eval.json");
  auto results = nlohmann::json::parse(eval_file)["results"];
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1]["seq_len"].get<int>(), 64);
  EXPECT_TRUE(std::isfinite(results[1]["val_loss"].get<double>()));

  // The same run on another dataset: data=files replaces the saved data group, as composing with
  // it would (so its own seq_len and batch_size unless given), and the run's tokenizer encodes
  // the file.
  const fs::path notes = root / "notes.txt";
  {
    std::ofstream out(notes);
    for (int i = 0; i < 200; ++i)
      out << "Call me Ishmael. Some years ago, never mind how long precisely, line " << i << ".\n";
  }
  CommandRun other = run_attnlab("eval run_dir=" + ar + " data=files data.train=" + notes.string() +
                                 " data.seq_len=32 data.batch_size=4 eval.batches=2"
                                 " trainer.progress=none");
  ASSERT_EQ(other.code, 0) << other.output;
  std::ifstream other_file(fs::path(ar) / "eval.json");
  const auto other_results = nlohmann::json::parse(other_file)["results"];
  ASSERT_EQ(other_results.size(), 1u);
  EXPECT_TRUE(std::isfinite(other_results[0]["val_loss"].get<double>()));
  EXPECT_NE(other_results[0]["val_loss"].get<double>(), results[0]["val_loss"].get<double>());

  CommandRun sample =
      run_attnlab("sample run_dir=" + ar + " prompt=Call max_new_tokens=15 top_k=5 top_p=0.9");
  ASSERT_EQ(sample.code, 0) << sample.output;
  EXPECT_NE(sample.output.find("tokens/s"), std::string::npos) << sample.output;

  CommandRun bad = run_attnlab("sample run_dir=" + ar + " temperatur=0.5");
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("temperatur"), std::string::npos) << bad.output;

  // AR -> masked-diffusion LM: same weights, block-causal attention, diffusion objective.
  CommandRun convert = run_attnlab("train run.dir=" + dlm + " init_from=" + ar +
                                   " objective=masked_diffusion model.mask=block_causal"
                                   " model.block_size=8 trainer.max_steps=4" +
                                   kTiny);
  ASSERT_EQ(convert.code, 0) << convert.output;
  CommandRun dlm_sample =
      run_attnlab("sample run_dir=" + dlm + " prompt=Call max_new_tokens=16 block_size=8");
  ASSERT_EQ(dlm_sample.code, 0) << dlm_sample.output;
  EXPECT_NE(dlm_sample.output.find("forward passes per token"), std::string::npos)
      << dlm_sample.output;
}

// --dry-run shows the composed config and where the run would go, and writes nothing; a sweep's
// dry run lists its jobs. A command that has no dry run refuses the flag instead of running.
TEST(Commands, DryRunPrintsWhatWouldRunAndWritesNothing) {
  const fs::path root = fs::path(ATTNLAB_BINARY_DIR) / "test_train_tmp" / "dry_run";
  fs::remove_all(root);
  CommandRun dry = run_attnlab("train --dry-run run.dir=" + (root / "run").string() + kTiny);
  ASSERT_EQ(dry.code, 0) << dry.output;
  EXPECT_NE(dry.output.find("d_model: 32"), std::string::npos) << dry.output;
  EXPECT_NE(dry.output.find("dry run: would train in " + (root / "run").string() + " (a new run)"),
            std::string::npos)
      << dry.output;
  EXPECT_FALSE(fs::exists(root)) << "--dry-run created " << root;

  CommandRun sweep = run_attnlab("train -m --dry-run optim.lr=0.001,0.002 seed=1,2 run.sweep_dir=" +
                                 (root / "sweep").string() + kTiny);
  ASSERT_EQ(sweep.code, 0) << sweep.output;
  EXPECT_NE(sweep.output.find("dry run: 4 jobs"), std::string::npos) << sweep.output;
  EXPECT_NE(sweep.output.find("optim.lr=0.002"), std::string::npos) << sweep.output;
  EXPECT_FALSE(fs::exists(root)) << "--dry-run created " << root;

  // What the real command refuses, the dry run refuses with the same line: it said "would
  // train" for trainer.max_steps=0, which training then refused.
  for (const std::string flag : {"--dry-run ", ""}) {
    CommandRun zero = run_attnlab("train " + flag +
                                  "trainer.max_steps=0 run.dir=" + (root / "run").string() + kTiny);
    EXPECT_EQ(zero.code, 2) << flag << zero.output;
    EXPECT_NE(zero.output.find("trainer.max_steps"), std::string::npos) << zero.output;
    EXPECT_FALSE(fs::exists(root)) << flag << "created " << root;
  }

  CommandRun eval = run_attnlab("eval --dry-run run_dir=" + (root / "run").string());
  EXPECT_EQ(eval.code, 2) << eval.output;
  EXPECT_NE(eval.output.find("--dry-run applies to train and submit"), std::string::npos)
      << eval.output;
}

// The groups with typed options (optim, scheduler, trainer.grades): a bad value or a key no
// option has is exit code 2 and one line naming the dotted key, from `train --dry-run` and from
// `config` (which binds them too); `config --defaults [group]` lists every option with its type,
// default and meaning, and an unknown group is one line listing the groups.
TEST(Commands, TypedOptionErrorsAndDefaults) {
  CommandRun clip = run_attnlab("train --dry-run optim.grad_clip=-1");
  EXPECT_EQ(clip.code, 2) << clip.output;
  EXPECT_EQ(clip.output, "error: optim.grad_clip: expected a number >= 0, got -1\n");

  CommandRun typo = run_attnlab("config ++optim.lrr=1");
  EXPECT_EQ(typo.code, 2) << typo.output;
  EXPECT_EQ(typo.output,
            "error: optim.lrr: optim 'adamw' has no option 'lrr'; its options: lr, betas, eps, "
            "weight_decay, grad_clip (did you mean lr?)\n");

  CommandRun momentum = run_attnlab("config optim=sgd optim.momentum=1.0");
  EXPECT_EQ(momentum.code, 2) << momentum.output;
  EXPECT_EQ(momentum.output, "error: optim.momentum: expected a number < 1, got 1\n");

  CommandRun grades = run_attnlab("config -m trainer.grades.patience=2,0");
  EXPECT_EQ(grades.code, 2) << grades.output;
  EXPECT_EQ(grades.output, "error: trainer.grades.patience: expected a number >= 1, got 0\n");

  CommandRun optim = run_attnlab("config --defaults optim");
  ASSERT_EQ(optim.code, 0) << optim.output;
  EXPECT_EQ(optim.output.rfind("optim=adamw:\n  lr ", 0), 0u) << optim.output;
  EXPECT_NE(optim.output.find("optim=sgd:\n"), std::string::npos) << optim.output;
  EXPECT_NE(optim.output.find("  nesterov      bool   true"), std::string::npos) << optim.output;

  CommandRun all = run_attnlab("config --defaults");
  ASSERT_EQ(all.code, 0) << all.output;
  for (const std::string heading : {"optim=adamw:", "scheduler=wsd:", "trainer:"})
    EXPECT_NE(all.output.find(heading), std::string::npos) << heading << "\n" << all.output;
  EXPECT_NE(all.output.find("decay_shape     string"), std::string::npos) << all.output;

  CommandRun unknown = run_attnlab("config --defaults optimm");
  EXPECT_EQ(unknown.code, 2) << unknown.output;
  EXPECT_EQ(unknown.output,
            "error: unknown group 'optimm' for --defaults; groups with typed options: model, "
            "attention, loss, objective, optim, scheduler, trainer, data, tokenizer, dist, "
            "launcher, probe, finetune, eval, task (did you mean optim?)\n");

  CommandRun elsewhere = run_attnlab("eval --defaults");
  EXPECT_EQ(elsewhere.code, 2) << elsewhere.output;
  EXPECT_NE(elsewhere.output.find("--defaults applies to config"), std::string::npos)
      << elsewhere.output;
}

// The typed groups of launch/, distributed/ and data/ (launcher, dist, tokenizer): a bad value or
// a key no option has is exit code 2 and one line naming the dotted key, from the command that
// binds them (a sweep's launcher before any job starts, submit's before the script is written,
// dist and tokenizer when training starts).
TEST(Commands, LauncherDistAndTokenizerOptionErrors) {
  const fs::path root = fs::path(ATTNLAB_BINARY_DIR) / "test_train_tmp" / "typed_option_errors";
  fs::remove_all(root);
  CommandRun parallel = run_attnlab(
      "train -m --dry-run seed=1,2 launcher.parallel=0 "
      "run.sweep_dir=" +
      (root / "sweep").string() + kTiny);
  EXPECT_EQ(parallel.code, 2) << parallel.output;
  EXPECT_EQ(parallel.output, "error: launcher.parallel: expected a number >= 1, got 0\n");

  CommandRun nodes =
      run_attnlab("submit --dry-run launcher.nodes=0 run.dir=" + (root / "slurm").string());
  EXPECT_EQ(nodes.code, 2) << nodes.output;
  EXPECT_EQ(nodes.output, "error: launcher.nodes: expected a number >= 1, got 0\n");

  CommandRun typo =
      run_attnlab("submit --dry-run ++launcher.partiton=gpu run.dir=" + (root / "slurm").string());
  EXPECT_EQ(typo.code, 2) << typo.output;
  EXPECT_EQ(typo.output.rfind("error: launcher.partiton: launcher 'slurm' has no option "
                              "'partiton'; its options: nodes, ",
                              0),
            0u)
      << typo.output;
  EXPECT_NE(typo.output.find("(did you mean partition?)\n"), std::string::npos) << typo.output;

  CommandRun dist =
      run_attnlab("train dist.bucket_mb=0 run.dir=" + (root / "dist").string() + kTiny);
  EXPECT_EQ(dist.code, 2) << dist.output;
  EXPECT_EQ(dist.output, "error: dist.bucket_mb: expected a number > 0, got 0\n");

  CommandRun tokenizer = run_attnlab("train tokenizer=bpe tokenizer.vocab_size=0 run.dir=" +
                                     (root / "tokenizer").string() + kTiny);
  EXPECT_EQ(tokenizer.code, 2) << tokenizer.output;
  EXPECT_NE(tokenizer.output.find("error: tokenizer.vocab_size: expected a number >= 1, got 0\n"),
            std::string::npos)
      << tokenizer.output;
  fs::remove_all(root);
}

// Every experiment file the project ships composes and trains (a few steps, tiny data).
TEST(Commands, EveryShippedExperimentTrains) {
  const fs::path root = fs::path(ATTNLAB_BINARY_DIR) / "test_train_tmp" / "experiments";
  fs::remove_all(root);
  int trained = 0;
  for (const auto& entry :
       fs::directory_iterator(fs::path(ATTNLAB_SOURCE_DIR) / "configs" / "experiment")) {
    if (entry.path().extension() != ".yaml") continue;
    const std::string name = entry.path().stem().string();
    CommandRun run = run_attnlab("train experiment=" + name + " run.dir=" + (root / name).string() +
                                 " trainer.max_steps=3 trainer.eval_every=0 trainer.eval_batches=1"
                                 " trainer.threads=1 trainer.progress=none data.max_documents=10");
    EXPECT_EQ(run.code, 0) << "experiment=" << name << ":\n" << run.output;
    EXPECT_NE(run.output.find("final: step 3"), std::string::npos) << run.output;
    ++trained;
  }
  EXPECT_GE(trained, 1);
}
