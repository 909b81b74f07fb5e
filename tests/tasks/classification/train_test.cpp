// `attnlab train task=classification` end to end through the real binary on a small slice of
// SpamAssassin: the metrics files agree with their own confusion matrices and with the split
// sizes, the checkpoint holds the classifier head, a run stopped half-way and resumed ends with
// exactly the metrics of an uninterrupted run, and init_from loads an LM run into the encoder.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/attnlab_command.h"
#include "trainer/checkpoint.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using attnlab::test::CommandRun;
using attnlab::test::run_attnlab;

json read_json(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return json::parse(in);
}

// 30 messages per class -> test 6 + 6 + 6, val 3 + 3 + 3, train 21 per class.
const std::string kSmall =
    " task=classification loss=focal_auto data.max_per_class=30 data.seq_len=48"
    " data.batch_size=8 model.d_model=32 model.n_layers=2 model.n_heads=2 trainer.max_steps=6"
    " trainer.eval_every=3 trainer.threads=1 trainer.progress=none scheduler.warmup_steps=2"
    " task.eval_batch_size=16";

// Recomputes every derived number of one split's metrics from its confusion matrix.
void expect_consistent(const json& split, int64_t expected_total) {
  auto confusion = split["confusion"].get<std::vector<std::vector<int64_t>>>();
  ASSERT_EQ(confusion.size(), 3u);
  int64_t total = 0, trace = 0;
  std::vector<int64_t> predicted(3, 0);
  double macro = 0;
  for (size_t r = 0; r < 3; ++r) {
    ASSERT_EQ(confusion[r].size(), 3u);
    int64_t row = 0;
    for (size_t k = 0; k < 3; ++k) {
      row += confusion[r][k];
      predicted[k] += confusion[r][k];
    }
    EXPECT_EQ(row, expected_total / 3) << "stratified support of class " << r;
    total += row;
    trace += confusion[r][r];
  }
  EXPECT_EQ(total, expected_total);
  EXPECT_EQ(split["total"].get<int64_t>(), expected_total);
  EXPECT_DOUBLE_EQ(split["accuracy"].get<double>(), double(trace) / double(total));
  const auto classes = split["classes"].get<std::vector<std::string>>();
  ASSERT_EQ(classes, (std::vector<std::string>{"easy_ham", "hard_ham", "spam"}));
  for (size_t c = 0; c < 3; ++c) {
    const json& pc = split["per_class"][classes[c]];
    const double p = predicted[c] ? double(confusion[c][c]) / predicted[c] : 0.0;
    const double r = double(confusion[c][c]) / double(expected_total / 3);
    EXPECT_DOUBLE_EQ(pc["precision"].get<double>(), p) << classes[c];
    EXPECT_DOUBLE_EQ(pc["recall"].get<double>(), r) << classes[c];
    EXPECT_NEAR(pc["f1"].get<double>(), p + r > 0 ? 2 * p * r / (p + r) : 0.0, 1e-12);
    macro += pc["f1"].get<double>() / 3;
  }
  EXPECT_NEAR(split["macro_f1"].get<double>(), macro, 1e-12);
}

}  // namespace

TEST(ClassificationTask, TrainsWritesConsistentMetricsAndResumesExactly) {
  const fs::path root = fs::path(ATTNLAB_BINARY_DIR) / "test_classification_tmp";
  fs::remove_all(root);
  const fs::path full = root / "full", halted = root / "halted";

  CommandRun run = run_attnlab("train run.dir=" + full.string() + kSmall);
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("final: step 6"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("| hard_ham |"), std::string::npos) << run.output;

  const json report = read_json(full / "classification_metrics.json");
  EXPECT_EQ(report["step"].get<int64_t>(), 6);
  expect_consistent(report["test"], 18);
  expect_consistent(report["val"], 9);
  const json result = read_json(full / "result.json");
  EXPECT_DOUBLE_EQ(result["test/macro_f1"].get<double>(), report["test"]["macro_f1"].get<double>());
  EXPECT_DOUBLE_EQ(result["test/recall/hard_ham"].get<double>(),
                   report["test"]["per_class"]["hard_ham"]["recall"].get<double>());
  std::ifstream md(full / "classification_metrics.md");
  std::string table((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  EXPECT_NE(table.find("Confusion matrix"), std::string::npos);

  // metrics.jsonl: the focal term's training loss and two validation evaluations.
  std::ifstream lines(full / "metrics.jsonl");
  std::string line;
  int val_records = 0;
  bool focal_logged = false;
  while (std::getline(lines, line)) {
    json record = json::parse(line);
    val_records += record.contains("val/macro_f1");
    focal_logged = focal_logged || record.contains("train/loss/focal");
  }
  EXPECT_EQ(val_records, 2);
  EXPECT_TRUE(focal_logged);

  auto weights = attnlab::read_checkpoint_model_state(attnlab::resolve_checkpoint(full.string()));
  ASSERT_TRUE(weights.count("classifier.weight"));
  EXPECT_EQ(weights.at("classifier.weight").sizes(), (std::vector<int64_t>{3, 32}));
  EXPECT_TRUE(weights.count("classifier.bias"));
  EXPECT_TRUE(weights.count("embed.weight"));

  // Stop after step 3, then resume to 6: the same final metrics, bit for bit.
  CommandRun first =
      run_attnlab("train run.dir=" + halted.string() + " trainer.halt_at_step=3" + kSmall);
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_NE(first.output.find("stopped at step 3"), std::string::npos) << first.output;
  EXPECT_FALSE(fs::exists(halted / "result.json"));
  CommandRun second = run_attnlab("train run.dir=" + halted.string() + kSmall);
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("resumed from"), std::string::npos) << second.output;
  EXPECT_EQ(read_json(halted / "classification_metrics.json"), report);

  // Pretrain -> fine-tune: a tiny LM run's weights load into the encoder; only the head is new.
  const fs::path lm = root / "lm";
  CommandRun pretrain = run_attnlab(
      "train run.dir=" + lm.string() +
      " trainer.max_steps=2 model.d_model=32 model.n_layers=2 model.n_heads=2 data.seq_len=32"
      " data.batch_size=4 data.max_documents=5 trainer.eval_batches=1 trainer.threads=1"
      " trainer.progress=none scheduler.warmup_steps=1");
  ASSERT_EQ(pretrain.code, 0) << pretrain.output;
  CommandRun finetune = run_attnlab("train run.dir=" + (root / "finetune").string() + kSmall +
                                    " init_from=" + lm.string() + " trainer.max_steps=2");
  ASSERT_EQ(finetune.code, 0) << finetune.output;
  EXPECT_NE(finetune.output.find("2 missing, 0 unexpected, 0 shape mismatches"), std::string::npos)
      << finetune.output;
  EXPECT_NE(finetune.output.find("classifier.bias"), std::string::npos) << finetune.output;

  CommandRun bad =
      run_attnlab("train run.dir=" + (root / "bad").string() + kSmall + " task.pooling=max");
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("task.pooling"), std::string::npos) << bad.output;
}

// The classification trainer follows the LM trainer's run-directory rules: a second process is
// refused while a run holds the directory, and a re-run that does not fit the existing checkpoint
// fails before config.yaml is rewritten.
TEST(ClassificationTask, LocksTheRunDirectoryAndValidatesBeforeWriting) {
  const fs::path dir = fs::path(ATTNLAB_BINARY_DIR) / "test_classification_tmp" / "locked";
  fs::remove_all(dir);
  CommandRun first = run_attnlab("train run.dir=" + dir.string() + kSmall);
  ASSERT_EQ(first.code, 0) << first.output;
  std::ifstream config_in(dir / "config.yaml");
  const std::string config((std::istreambuf_iterator<char>(config_in)),
                           std::istreambuf_iterator<char>());

  CommandRun changed = run_attnlab("train run.dir=" + dir.string() + kSmall +
                                   " model.d_model=64 trainer.max_steps=8");
  EXPECT_EQ(changed.code, 2) << changed.output;
  std::ifstream after_in(dir / "config.yaml");
  const std::string after((std::istreambuf_iterator<char>(after_in)),
                          std::istreambuf_iterator<char>());
  EXPECT_EQ(after, config) << "a failed re-run rewrote config.yaml";

  // Hold the lock from a shell (flock on the run's lock file) and try to train.
  const std::string lock_file = (dir / ".lock").string();
  CommandRun held = attnlab::test::CommandRun{-1, ""};
  {
    const std::string command = "flock -n '" + lock_file + "' '" + std::string(ATTNLAB_BINARY_DIR) +
                                "/attnlab' train run.dir=" + dir.string() + kSmall +
                                " trainer.max_steps=8 2>&1; echo \"rc=$?\"";
    // flock holds the lock, so the attnlab it runs must see it taken.
    FILE* pipe = popen(command.c_str(), "r");
    std::array<char, 4096> buffer{};
    while (pipe && fgets(buffer.data(), buffer.size(), pipe)) held.output += buffer.data();
    if (pipe) pclose(pipe);
  }
  EXPECT_NE(held.output.find("in use by another"), std::string::npos) << held.output;
  EXPECT_NE(held.output.find("rc=2"), std::string::npos) << held.output;
}

// data=labelled_files: the user's CSV (quoted fields with commas, quotes and line breaks) and
// JSON Lines (integer labels, a given test file), trained end to end; classes in a stable order,
// counts printed; a missing column is one clear line.
TEST(ClassificationTask, TrainsOnTheUsersCsvAndJsonl) {
  const fs::path root = fs::path(ATTNLAB_BINARY_DIR) / "test_classification_tmp" / "user_files";
  fs::remove_all(root);
  fs::create_directories(root);
  const std::string words[3] = {"the whale swam deep", "the ship sailed far",
                                "the storm, \"wild\", broke"};
  {
    std::ofstream csv(root / "reviews.csv");
    csv << "id,review,sentiment\n";
    const char* names[3] = {"pos", "neg", "neutral"};  // rows not in class order
    for (int i = 0; i < 90; ++i) {
      const int c = (i * 7) % 3;
      std::string text = words[c] + std::string(" number ") + std::to_string(i);
      std::string quoted;
      for (char ch : text) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
      csv << i << ",\"" << quoted << (i % 5 == 0 ? "\nsecond line" : "") << "\"," << names[c]
          << "\n";
    }
  }
  const std::string small =
      " task=classification data=labelled_files data.seq_len=32 data.batch_size=8"
      " model.d_model=32 model.n_layers=2 model.n_heads=2 trainer.max_steps=4 trainer.eval_every=4"
      " trainer.threads=1 trainer.progress=none scheduler.warmup_steps=0 task.eval_batch_size=16";
  CommandRun csv_run = run_attnlab("train run.dir=" + (root / "csv").string() + small +
                                   " data.train=" + (root / "reviews.csv").string() +
                                   " data.text_key=review data.label_key=sentiment");
  ASSERT_EQ(csv_run.code, 0) << csv_run.output;
  const json csv_metrics = read_json(root / "csv" / "classification_metrics.json");
  EXPECT_EQ(csv_metrics["test"]["classes"].get<std::vector<std::string>>(),
            (std::vector<std::string>{"neg", "neutral", "pos"}));
  EXPECT_EQ(csv_metrics["test"]["total"].get<int64_t>(), 18);  // 20% of 30 per class
  EXPECT_NE(csv_run.output.find("classification: 90 examples"), std::string::npos)
      << csv_run.output;
  EXPECT_NE(csv_run.output.find("neg 21"), std::string::npos) << csv_run.output;

  // JSON Lines with integer labels 2, 9, 10 (numeric order, not "10" < "2") and a test file.
  for (const char* name : {"train.jsonl", "test.jsonl"}) {
    std::ofstream out(root / name);
    const int rows = std::string(name) == "train.jsonl" ? 60 : 12;
    for (int i = 0; i < rows; ++i) {
      const int c = i % 3;
      const int label = c == 0 ? 10 : c == 1 ? 2 : 9;
      out << json{{"text", words[c] + std::to_string(i)}, {"label", label}}.dump() << "\n";
    }
  }
  CommandRun jsonl_run = run_attnlab("train run.dir=" + (root / "jsonl").string() + small +
                                     " data.train=" + (root / "train.jsonl").string() +
                                     " data.test=" + (root / "test.jsonl").string());
  ASSERT_EQ(jsonl_run.code, 0) << jsonl_run.output;
  const json jsonl_metrics = read_json(root / "jsonl" / "classification_metrics.json");
  EXPECT_EQ(jsonl_metrics["test"]["classes"].get<std::vector<std::string>>(),
            (std::vector<std::string>{"2", "9", "10"}));
  EXPECT_EQ(jsonl_metrics["test"]["total"].get<int64_t>(), 12);  // exactly the test file

  CommandRun missing = run_attnlab("train run.dir=" + (root / "bad").string() + small +
                                   " data.train=" + (root / "reviews.csv").string());
  EXPECT_EQ(missing.code, 2) << missing.output;
  EXPECT_NE(missing.output.find("reviews.csv: no column 'text' (set by data.text_key); the "
                                "header has: id, review, sentiment"),
            std::string::npos)
      << missing.output;
  EXPECT_FALSE(fs::exists(root / "bad" / "config.yaml"));
}

// Every command that loads a run goes through its task: `attnlab eval` on a classification run
// reports both held-out splits with the per-class table, equal to what training wrote for the
// same (final) weights; `sample` and `export format=hf` are one clear line each (exit 2), and
// `export format=pt` writes the classifier's weights.
TEST(ClassificationTask, EvalSampleAndExportWorkOnAClassificationRun) {
  const fs::path root = fs::path(ATTNLAB_BINARY_DIR) / "test_classification_tmp" / "commands";
  fs::remove_all(root);
  CommandRun train = run_attnlab("train run.dir=" + root.string() + kSmall);
  ASSERT_EQ(train.code, 0) << train.output;
  const json report = read_json(root / "classification_metrics.json");

  CommandRun eval = run_attnlab("eval run_dir=" + root.string() + " checkpoint=latest");
  ASSERT_EQ(eval.code, 0) << eval.output;
  EXPECT_NE(eval.output.find("| hard_ham |"), std::string::npos) << eval.output;
  const json evaluated = read_json(root / "eval.json");
  EXPECT_EQ(evaluated["task"], "classification");
  ASSERT_EQ(evaluated["results"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const json& row = evaluated["results"][i];
    const std::string split = i == 0 ? "val" : "test";
    EXPECT_EQ(row["split"], split);
    EXPECT_EQ(row["examples"].get<int64_t>(), i == 0 ? 9 : 18);
    EXPECT_NEAR(row["accuracy"].get<double>(), report[split]["accuracy"].get<double>(), 1e-12);
    EXPECT_NEAR(row["macro_f1"].get<double>(), report[split]["macro_f1"].get<double>(), 1e-12);
  }

  CommandRun lengths = run_attnlab("eval run_dir=" + root.string() + " eval.seq_lens=[96]");
  EXPECT_EQ(lengths.code, 2) << lengths.output;
  EXPECT_NE(lengths.output.find("eval.seq_lens"), std::string::npos) << lengths.output;

  CommandRun sample = run_attnlab("sample run_dir=" + root.string());
  EXPECT_EQ(sample.code, 2) << sample.output;
  EXPECT_NE(sample.output.find("is a 'classification' run"), std::string::npos) << sample.output;

  CommandRun hf = run_attnlab("export run_dir=" + root.string() + " format=hf");
  EXPECT_EQ(hf.code, 2) << hf.output;
  EXPECT_NE(hf.output.find("export it with format=pt"), std::string::npos) << hf.output;
  EXPECT_FALSE(fs::exists(root / "hf"));
  CommandRun pt =
      run_attnlab("export run_dir=" + root.string() + " out=" + (root / "model.pt").string());
  ASSERT_EQ(pt.code, 0) << pt.output;
  EXPECT_TRUE(fs::exists(root / "model.pt"));
}
