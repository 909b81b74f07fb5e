// data=files: training on the user's own .txt/.jsonl/.bin files. End to end through the real
// binary (a tiny model trains from each format), the by-document split with and without
// data.val, the .bin token split, the user errors (exit 2, naming the file, key or line), and
// the content-keyed shard cache (a changed file is prepared again, an unchanged one is reused).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "data/corpora/user_files.h"
#include "data/prepare.h"
#include "data/tokenizers/bpe_tokenizer.h"
#include "data_test_support.h"
#include "tests/support/attnlab_command.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;
using test::CommandRun;
using test::run_attnlab;

const std::string kTiny =
    " model.d_model=32 model.n_layers=2 model.n_heads=2 model.max_seq_len=32 data.seq_len=32"
    " data.batch_size=4 trainer.eval_batches=2 trainer.threads=1 trainer.progress=none"
    " scheduler.warmup_steps=2 trainer.max_steps=4";

// A fresh folder for one test under the per-process temporary folder.
fs::path fresh_dir(const std::string& name) {
  const fs::path dir = test::temp_dir() / "files" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

void write_ids(const fs::path& path, const std::vector<uint16_t>& ids) {
  std::ofstream out(path, std::ios::binary);
  for (uint16_t id : ids) {
    const char bytes[2] = {static_cast<char>(id & 0xFF), static_cast<char>(id >> 8)};
    out.write(bytes, 2);
  }
}

// Document k: a sentence with its number, long enough for a 32-token window.
std::string document(int k) {
  return "Document " + std::to_string(k) +
         " tells of the sea, the ship and the whale that the crew followed for many days.";
}

// A data=files config like the composed one (byte tokenizer, shards under `dir`).
YAML::Node files_config(const fs::path& dir, const std::string& train) {
  YAML::Node config;
  config["seed"] = 1;
  config["data"]["train"] = train;
  config["data"]["val"] = YAML::Node(YAML::NodeType::Null);
  config["data"]["format"] = "auto";
  config["data"]["separator"] = YAML::Node(YAML::NodeType::Null);
  config["data"]["val_fraction"] = 0.1;
  config["data"]["derived_dir"] = (dir / "derived").string();
  config["tokenizer"]["name"] = "byte";
  return config;
}

// Runs `attnlab train` on data=files and checks exit 0, a final line and a finite val loss.
void expect_trains(const fs::path& dir, const std::string& args) {
  const CommandRun run =
      run_attnlab("train data=files run.dir=" + (dir / "run").string() +
                  " data.derived_dir=" + (dir / "derived").string() + " " + args + kTiny);
  ASSERT_EQ(run.code, 0) << run.output;
  const size_t final_at = run.output.find("final: step 4");
  ASSERT_NE(final_at, std::string::npos) << run.output;
  const size_t loss_at = run.output.find("val loss ", final_at);
  ASSERT_NE(loss_at, std::string::npos) << run.output;
  const double loss = std::stod(run.output.substr(loss_at + 9));
  EXPECT_TRUE(std::isfinite(loss) && loss > 0) << run.output;
}

// Runs `attnlab prepare` expecting exit 2 and an error line holding every piece of `expected`.
void expect_user_error(const fs::path& dir, const std::string& args,
                       const std::vector<std::string>& expected) {
  const CommandRun run =
      run_attnlab("prepare data=files data.derived_dir=" + (dir / "derived").string() + " " + args);
  EXPECT_EQ(run.code, 2) << run.output;
  const size_t error_at = run.output.find("error: ");
  ASSERT_NE(error_at, std::string::npos) << run.output;
  const std::string line = run.output.substr(error_at, run.output.find('\n', error_at) - error_at);
  for (const auto& piece : expected) EXPECT_NE(line.find(piece), std::string::npos) << line;
}

std::string quoted(const std::string& override_text) { return "'" + override_text + "'"; }

TEST(UserFiles, TrainsFromTxtSplitOnASeparator) {
  const fs::path dir = fresh_dir("txt");
  std::string text;
  for (int k = 0; k < 30; ++k) text += document(k) + "<|endoftext|>";
  write_text(dir / "corpus.txt", text);
  expect_trains(dir, quoted("data.train=" + (dir / "*.txt").string()) + " " +
                         quoted("data.separator=<|endoftext|>"));
  // 30 documents, 3 held out (data.val_fraction 0.1), each followed by EOS in the shards.
  const auto tokens = fs::directory_iterator(dir / "derived" / "tokens");
  for (const auto& entry : tokens) {
    if (!entry.is_directory()) continue;
    const auto val = TokenShard::open(entry.path() / "val.bin");
    const auto train = TokenShard::open(entry.path() / "train.bin");
    EXPECT_EQ(val->info().document_count, 3u);
    EXPECT_EQ(train->info().document_count, 27u);
  }
}

TEST(UserFiles, TrainsFromJsonl) {
  const fs::path dir = fresh_dir("jsonl");
  std::string lines;
  for (int k = 0; k < 30; ++k)
    lines += "{\"id\": " + std::to_string(k) + ", \"body\": \"" + document(k) + "\"}\n\n";
  write_text(dir / "corpus.jsonl", lines);
  expect_trains(dir, "data.train=" + (dir / "corpus.jsonl").string() + " data.text_key=body");
}

TEST(UserFiles, TrainsFromNanoGptBinTokens) {
  const fs::path dir = fresh_dir("bin");
  std::vector<uint16_t> ids;
  for (int k = 0; k < 40; ++k) {
    for (unsigned char c : document(k)) ids.push_back(c);
    ids.push_back(255);
  }
  write_ids(dir / "train.bin", ids);
  expect_trains(
      dir, "data.train=" + (dir / "train.bin").string() + " data.vocab_size=256 tokenizer=byte");
}

TEST(UserFiles, TrainsFromNanoGptBinWithGpt2AndValFile) {
  const fs::path dir = fresh_dir("bin_gpt2");
  std::vector<uint16_t> train, val;
  for (int i = 0; i < 3000; ++i) train.push_back(static_cast<uint16_t>((i * 7919) % 50257));
  for (int i = 0; i < 400; ++i) val.push_back(static_cast<uint16_t>((i * 104729) % 50257));
  write_ids(dir / "train.bin", train);
  write_ids(dir / "val.bin", val);
  expect_trains(dir, "data.train=" + (dir / "train.bin").string() + " data.val=" +
                         (dir / "val.bin").string() + " data.vocab_size=50257 tokenizer=gpt2");
}

TEST(UserFiles, SplitWithoutValIsDeterministicDisjointAndSpreadEvenly) {
  const fs::path dir = fresh_dir("split");
  std::string text;
  for (int k = 0; k < 20; ++k) text += "doc " + std::to_string(k) + "\n\n";
  write_text(dir / "a.txt", text);
  YAML::Node config = files_config(dir, (dir / "a.txt").string());
  config["data"]["separator"] = "\\n\\n";  // typed escapes, as on the command line
  const FilesSpec spec = files_spec(config);
  const CorpusSplit first = load_files_split(spec);
  const CorpusSplit second = load_files_split(spec);
  ASSERT_EQ(first.val.size(), 2u);  // floor(20 * 0.1)
  ASSERT_EQ(first.train.size(), 18u);
  EXPECT_EQ(first.val[0].text, "doc 9");  // documents 9 and 19 (0-based), as load_split
  EXPECT_EQ(first.val[1].text, "doc 19");
  std::set<std::string> train_texts;
  for (size_t i = 0; i < first.train.size(); ++i) {
    EXPECT_EQ(first.train[i].text, second.train[i].text);
    train_texts.insert(first.train[i].text);
  }
  for (const auto& doc : first.val) EXPECT_EQ(train_texts.count(doc.text), 0u) << doc.text;

  // The shards hold the same split: byte ids of each document followed by EOS (257).
  const PreparedData data = prepare_data(config);
  std::vector<int64_t> val(static_cast<size_t>(data.val->size()));
  data.val->copy(0, data.val->size(), val.data());
  std::vector<int64_t> expected;
  for (const auto& doc : first.val) {
    for (unsigned char c : doc.text) expected.push_back(c);
    expected.push_back(257);
  }
  EXPECT_EQ(val, expected);
}

TEST(UserFiles, ValFilesAreUsedAsGiven) {
  const fs::path dir = fresh_dir("val_files");
  write_text(dir / "t1.txt", "first training file");
  write_text(dir / "t2.txt", "second training file");
  write_text(dir / "held.md", "the validation file");
  YAML::Node config = files_config(dir, (dir / "t*.txt").string());
  config["data"]["val"].push_back((dir / "held.md").string());
  const CorpusSplit split = load_files_split(files_spec(config));
  ASSERT_EQ(split.train.size(), 2u);
  EXPECT_EQ(split.train[0].text, "first training file");  // sorted by name
  EXPECT_EQ(split.train[1].text, "second training file");
  ASSERT_EQ(split.val.size(), 1u);
  EXPECT_EQ(split.val[0].text, "the validation file");

  config["data"]["val"] = (dir / "t1.txt").string();  // a file in both splits is refused
  EXPECT_THROW(files_spec(config), UserError);
}

TEST(UserFiles, FormatIsByExtensionUnlessSet) {
  const fs::path dir = fresh_dir("format");
  write_text(dir / "lines.json", "{\"text\": \"one\"}\n{\"text\": \"two\"}\n");
  YAML::Node config = files_config(dir, (dir / "lines.json").string());
  config["data"]["val_fraction"] = 0.0;
  std::vector<std::string> texts;
  const auto collect = [&texts](Document&& doc) { texts.push_back(doc.text); };
  const FilesSpec as_text = files_spec(config);  // auto: .json is not .jsonl, so one text file
  for_each_document(as_text, as_text.train_files, collect);
  EXPECT_EQ(texts.size(), 1u);
  config["data"]["format"] = "jsonl";
  texts.clear();
  const FilesSpec as_jsonl = files_spec(config);
  for_each_document(as_jsonl, as_jsonl.train_files, collect);
  EXPECT_EQ(texts, (std::vector<std::string>{"one", "two"}));
  config["data"]["format"] = "csv";
  EXPECT_THROW(files_spec(config), UserError);
}

TEST(UserFiles, BinHoldsOutTheLastTokens) {
  const fs::path dir = fresh_dir("bin_split");
  std::vector<uint16_t> ids;
  for (int i = 0; i < 1000; ++i) ids.push_back(static_cast<uint16_t>(i % 250));
  write_ids(dir / "a.bin", std::vector<uint16_t>(ids.begin(), ids.begin() + 600));
  write_ids(dir / "b.bin", std::vector<uint16_t>(ids.begin() + 600, ids.end()));
  YAML::Node config = files_config(dir, (dir / "*.bin").string());
  config["data"]["vocab_size"] = 256;
  config["data"]["val_fraction"] = 0.25;
  const PreparedData data = prepare_data(config);
  ASSERT_EQ(data.train->size(), 750);
  ASSERT_EQ(data.val->size(), 250);
  std::vector<int64_t> val(250);
  data.val->copy(0, 250, val.data());
  EXPECT_EQ(val, std::vector<int64_t>(ids.begin() + 750, ids.end()));
  EXPECT_EQ(data.train->token(749), ids[749]);
  EXPECT_EQ(data.val->info().utf8_bytes, 250u);  // byte ids decode to one byte each
}

TEST(UserFiles, LongFilesSplitAcrossReadChunksAndInvalidUtf8IsReplaced) {
  const fs::path dir = fresh_dir("chunks");
  std::string text;
  int count = 0;
  while (text.size() < (size_t{5} << 19)) text += document(count++) + "%%SEP%%";
  text += "\xff\xfe tail";
  write_text(dir / "big.txt", text);
  YAML::Node config = files_config(dir, (dir / "big.txt").string());
  config["data"]["separator"] = "%%SEP%%";
  int seen = 0;
  std::string last;
  for_each_document(files_spec(config), files_spec(config).train_files, [&](Document&& doc) {
    if (seen < count) {
      EXPECT_EQ(doc.text, document(seen)) << seen;
    }
    last = doc.text;
    ++seen;
  });
  EXPECT_EQ(seen, count + 1);
  EXPECT_EQ(last, "\xEF\xBF\xBD\xEF\xBF\xBD tail");
}

TEST(UserFiles, ErrorsNameTheFileKeyOrLine) {
  const fs::path dir = fresh_dir("errors");
  const std::string pattern = (dir / "nothing_*.txt").string();
  expect_user_error(dir, quoted("data.train=" + pattern), {"data.train", pattern});
  expect_user_error(dir, "", {"data.train"});

  write_text(dir / "bad.jsonl", "{\"text\": \"fine\"}\n\n{\"text\": oops}\n");
  expect_user_error(dir, "data.train=" + (dir / "bad.jsonl").string(),
                    {(dir / "bad.jsonl").string() + ":3", "not valid JSON"});
  write_text(dir / "nokey.jsonl", "{\"text\": \"fine\"}\n{\"body\": \"no text\"}\n");
  expect_user_error(dir, "data.train=" + (dir / "nokey.jsonl").string(),
                    {(dir / "nokey.jsonl").string() + ":2", "\"text\""});
  write_text(dir / "array.jsonl", "[1, 2]\n");
  expect_user_error(dir, "data.train=" + (dir / "array.jsonl").string(),
                    {(dir / "array.jsonl").string() + ":1", "object"});

  write_ids(dir / "ids.bin", {1, 2, 3, 300, 4});
  expect_user_error(dir, "data.train=" + (dir / "ids.bin").string() + " data.vocab_size=256",
                    {(dir / "ids.bin").string(), "300", "byte offset 6", "data.vocab_size"});
  write_text(dir / "odd.bin", "abc");
  expect_user_error(dir, "data.train=" + (dir / "odd.bin").string() + " data.vocab_size=256",
                    {(dir / "odd.bin").string(), "odd size"});
  expect_user_error(dir, "data.train=" + (dir / "ids.bin").string(), {"data.vocab_size"});
  expect_user_error(
      dir, "data.train=" + (dir / "ids.bin").string() + " data.vocab_size=50257 tokenizer=byte",
      {"data.vocab_size", "50257", "260"});
}

// The shard folder `attnlab prepare` reports ("wrote <dir>" or "up to date: <dir>").
fs::path prepared_dir(const std::string& output) {
  for (const std::string prefix : {"wrote ", "up to date: "}) {
    const size_t at = output.find(prefix);
    if (at != std::string::npos) {
      const size_t begin = at + prefix.size();
      return output.substr(begin, output.find('\n', begin) - begin);
    }
  }
  ADD_FAILURE() << "no shard folder in: " << output;
  return {};
}

// README's 'data.separator=\n\n', typed unquoted, was the two letters "nn": one document where
// there are ten. It is the same as the quoted form now, two newlines.
TEST(UserFiles, ASeparatorTypedUnquotedSplitsOnNewlines) {
  const fs::path dir = fresh_dir("separator_typed");
  std::string text;
  for (int k = 0; k < 10; ++k) text += (k ? "\n\n" : "") + document(k) + "\nsecond line";
  write_text(dir / "input.txt", text);
  const std::string train = quoted("data.train=" + (dir / "input.txt").string());
  CommandRun run = run_attnlab("config data=files " + train + " 'data.separator=\\n\\n'");
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_EQ(run.output.find("separator: nn"), std::string::npos) << run.output;
  for (const std::string& separator : {"'data.separator=\\n\\n'", "'data.separator=\"\\n\\n\"'"}) {
    run = run_attnlab("prepare data=files data.derived_dir=" + (dir / "derived").string() + " " +
                      train + " " + separator);
    ASSERT_EQ(run.code, 0) << run.output;
    const fs::path shards = prepared_dir(run.output);
    EXPECT_EQ(TokenShard::open(shards / "train.bin")->info().document_count, 9u) << separator;
    EXPECT_EQ(TokenShard::open(shards / "val.bin")->info().document_count, 1u) << separator;
  }
}

// nanoGPT-style: one input.txt. Its one document could not be split, so validation was empty and
// training stopped with "val.bin (0 tokens) is too short". The last data.val_fraction of the
// tokens is validation now, and every run says how the data was split.
TEST(UserFiles, ASingleTextFileTrainsWithItsLastTokensHeldOut) {
  const fs::path dir = fresh_dir("single_file");
  std::string text;
  for (int k = 0; k < 30; ++k) text += document(k) + "\n";
  write_text(dir / "input.txt", text);
  const CommandRun run = run_attnlab("train data=files run.dir=" + (dir / "run").string() +
                                     " data.derived_dir=" + (dir / "derived").string() +
                                     " data.train=" + (dir / "input.txt").string() + kTiny);
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("final: step 4"), std::string::npos) << run.output;
  const uint64_t total = text.size() + 1;  // byte ids and one EOS
  const uint64_t held_out = total / 10;
  EXPECT_NE(run.output.find("data split: train 1 document, " + std::to_string(total - held_out) +
                            " tokens | validation 1 document, " + std::to_string(held_out) +
                            " tokens (10.0% of the tokens: the last data.val_fraction"),
            std::string::npos)
      << run.output;

  const PreparedData data = prepare_data(files_config(dir, (dir / "input.txt").string()));
  EXPECT_FALSE(data.built);  // the run's shards
  ASSERT_EQ(static_cast<uint64_t>(data.val->size()), held_out);
  ASSERT_EQ(static_cast<uint64_t>(data.train->size()), total - held_out);
  EXPECT_EQ(data.train->token(0), static_cast<unsigned char>(text[0]));
  EXPECT_EQ(data.val->token(0), static_cast<unsigned char>(text[total - held_out]));
  EXPECT_EQ(data.val->token(data.val->size() - 1), 257);  // EOS
  EXPECT_EQ(data.val->info().utf8_bytes, held_out - 1);
  EXPECT_EQ(data.train->info().utf8_bytes, total - held_out);
  EXPECT_FALSE(fs::exists(data.dir / "all.bin"));

  // BPE trains on the training part only: the held-out tail is not in its text.
  const std::vector<std::string> texts =
      files_training_texts(files_spec(files_config(dir, (dir / "input.txt").string())));
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_EQ(texts[0], text.substr(0, text.size() - text.size() / 10));
}

// 4 files at data.val_fraction 0.1 held out one whole file (25% of the text); fewer documents
// than 1 / val_fraction now hold out 10% of the tokens.
TEST(UserFiles, FewFilesHoldOutTheFractionOfTokensNotAWholeFile) {
  const fs::path dir = fresh_dir("few_files");
  uint64_t total = 0;
  for (int f = 0; f < 4; ++f) {
    std::string text;
    for (int k = 0; k < 5 + 3 * f; ++k) text += document(k) + "\n";
    write_text(dir / ("part" + std::to_string(f) + ".txt"), text);
    total += text.size() + 1;
  }
  const PreparedData data = prepare_data(files_config(dir, (dir / "*.txt").string()));
  EXPECT_EQ(data.split, "tokens");
  EXPECT_EQ(static_cast<uint64_t>(data.val->size()), total / 10);
  EXPECT_EQ(static_cast<uint64_t>(data.train->size()), total - total / 10);
  EXPECT_EQ(data.train->info().document_count, 4u);  // the last file is split between them
  EXPECT_EQ(data.val->info().document_count, 1u);
  EXPECT_NE(describe_split(data).find("10.0% of the tokens"), std::string::npos)
      << describe_split(data);
}

// Too little validation text, or trainer.eval_batches < 1: one line naming the keys to change.
TEST(UserFiles, TooLittleValidationDataNamesTheKeysThatFixIt) {
  const fs::path dir = fresh_dir("too_little");
  write_text(dir / "small.txt", document(1) + document(2) + document(3));  // 15 held-out tokens
  const std::string base = "train data=files run.dir=" + (dir / "run").string() +
                           " data.derived_dir=" + (dir / "derived").string() +
                           " data.train=" + (dir / "small.txt").string() + kTiny;
  CommandRun run = run_attnlab(base);
  EXPECT_EQ(run.code, 2) << run.output;
  size_t error_at = run.output.find("error: ");
  ASSERT_NE(error_at, std::string::npos) << run.output;
  std::string line = run.output.substr(error_at, run.output.find('\n', error_at) - error_at);
  for (const char* key :
       {"validation split", "data.val_fraction", "data.batch_size", "data.seq_len"})
    EXPECT_NE(line.find(key), std::string::npos) << line;

  for (const char* count : {"0", "-1"}) {
    run = run_attnlab(base + " trainer.eval_batches=" + count);
    EXPECT_EQ(run.code, 2) << run.output;
    error_at = run.output.find("error: ");
    ASSERT_NE(error_at, std::string::npos) << run.output;
    line = run.output.substr(error_at, run.output.find('\n', error_at) - error_at);
    EXPECT_NE(line.find("trainer.eval_batches"), std::string::npos) << line;
    EXPECT_EQ(line.find("too few"), std::string::npos) << line;
  }
}

// Number of cached BPE models under `dir`.
int bpe_models(const fs::path& dir) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(dir))
    count += entry.path().extension() == ".model" ? 1 : 0;
  return count;
}

TEST(UserFiles, BpeTrainsOnTheTrainDocumentsOnly) {
  const fs::path dir = fresh_dir("bpe");
  std::string text;
  for (int k = 0; k < 30; ++k) text += document(k) + " Ishmael " + std::to_string(k * k) + "\n\n";
  write_text(dir / "a.txt", text);
  YAML::Node config = files_config(dir, (dir / "a.txt").string());
  config["data"]["separator"] = "\n\n";
  config["tokenizer"]["name"] = "bpe";
  config["tokenizer"]["vocab_size"] = 300;
  const PreparedData data = prepare_data(config);
  const fs::path models = dir / "derived" / "tokenizers";
  ASSERT_EQ(bpe_models(models), 1);

  // The cache is keyed by the training text: the train documents find the same model, all
  // documents (train + val) would be another one.
  BpeTrainOptions options;
  options.vocab_size = 300;
  const FilesSpec spec = files_spec(config);
  const auto same = BpeTokenizer::train_or_load(files_training_texts(spec), options, models);
  EXPECT_EQ(same->fingerprint(), data.tokenizer->fingerprint());
  EXPECT_EQ(bpe_models(models), 1);
  const CorpusSplit split = load_files_split(spec);
  std::vector<std::string> all;
  for (const auto* docs : {&split.train, &split.val})
    for (const auto& doc : *docs) all.push_back(doc.text);
  BpeTokenizer::train_or_load(all, options, models);
  EXPECT_EQ(bpe_models(models), 2);
}

// inode and modification time of a file, to tell a rewritten file from the same one.
std::pair<ino_t, int64_t> identity(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return {st.st_ino, static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

TEST(UserFiles, ChangedFileIsPreparedAgainAndUnchangedIsReused) {
  const fs::path dir = fresh_dir("cache");
  std::string text;
  for (int k = 0; k < 10; ++k) text += document(k) + "\n\n";
  write_text(dir / "a.txt", text);
  YAML::Node config = files_config(dir, (dir / "a.txt").string());
  config["data"]["separator"] = "\n\n";

  const PreparedData first = prepare_data(config);
  EXPECT_TRUE(first.built);
  const auto train_id = identity(first.dir / "train.bin");
  const PreparedData again = prepare_data(config);
  EXPECT_FALSE(again.built);
  EXPECT_EQ(again.dir, first.dir);
  EXPECT_EQ(identity(first.dir / "train.bin"), train_id);

  write_text(dir / "a.txt", text + document(10));  // same name, new content
  const PreparedData changed = prepare_data(config);
  EXPECT_TRUE(changed.built);
  EXPECT_NE(changed.dir, first.dir);
  EXPECT_NE(changed.train->info().corpus_hash, first.train->info().corpus_hash);
  EXPECT_EQ(changed.train->info().document_count + changed.val->info().document_count, 11u);

  config["data"]["val_fraction"] = 0.2;  // a changed setting also gets new shards
  const PreparedData resplit = prepare_data(config);
  EXPECT_TRUE(resplit.built);
  EXPECT_NE(resplit.dir, changed.dir);
}

}  // namespace
}  // namespace attnlab
