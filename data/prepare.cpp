// prepare_data: fetch, tokenise, split and write shards (see prepare.h).
#include "data/prepare.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/config_access.h"
#include "common/cpu_cores.h"
#include "common/error.h"
#include "common/progress_meter.h"
#include "data/corpora/corpus.h"
#include "data/corpora/user_files.h"
#include "data/data_cache.h"
#include "data/data_options.h"
#include "data/hash.h"
#include "data/parallel_encoder.h"
#include "data/tokenizers/bpe_tokenizer.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

// Holds an exclusive flock on `path` while alive: when several ranks or processes prepare the
// same data, one builds and the others wait, then find the shards present.
class FileLock {
 public:
  explicit FileLock(const fs::path& path) {
    fs::create_directories(path.parent_path());
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
    check_user(fd_ >= 0, "cannot create lock file " + path.string());
    ::flock(fd_, LOCK_EX);
  }
  ~FileLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// Whether this process is rank 0 of its launcher (or runs alone): only rank 0 reports.
bool launcher_rank_zero() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    const char* rank = std::getenv(name);
    if (rank && std::string(rank) != "0") return false;
  }
  return true;
}

// Removes what an interrupted prepare (kill -9) left in the shard folder `dir`: temporary shard
// and meta files (<name>.tmp<pid>) and the token-split scratch shard all.bin. Called with the
// folder's lock held, so no other prepare is writing them.
void remove_stale_temporaries(const fs::path& dir) {
  std::error_code error;
  if (!fs::is_directory(dir, error)) return;
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    const size_t tmp = name.rfind(".tmp");
    const bool temporary = tmp != std::string::npos && tmp + 4 < name.size() &&
                           name.find_first_not_of("0123456789", tmp + 4) == std::string::npos;
    if (temporary || name == "all.bin") stale.push_back(entry.path());
  }
  for (const auto& path : stale) fs::remove(path, error);
}

// True when <dir>/meta.json is a JSON object naming this tokenizer and both splits: prepare
// writes it last, so a prepare killed after the shard renames leaves none, and the shards are
// written again instead of being reported "up to date".
bool complete_meta(const fs::path& dir, const Tokenizer& tokenizer) {
  std::error_code error;
  const fs::path file = dir / "meta.json";
  if (!fs::is_regular_file(file, error)) return false;
  try {
    std::ifstream in(file);
    const nlohmann::json meta = nlohmann::json::parse(in);
    return meta.is_object() && meta.value("tokenizer", std::string()) == tokenizer.fingerprint() &&
           meta.contains("train") && meta.contains("val");
  } catch (const std::exception&) {
    return false;
  }
}

// The split of meta.json ("documents", "tokens" or "files"); "" when not recorded.
std::string recorded_split(const fs::path& dir) {
  try {
    std::ifstream in(dir / "meta.json");
    const nlohmann::json meta = nlohmann::json::parse(in);
    return meta.value("split", std::string());
  } catch (const std::exception&) {
    return "";
  }
}

// data.workers (0: every core this process may use) and the progress display: trainer.progress,
// silenced on every launcher rank but 0 (under MPI or Slurm only rank 0 reports).
EncodeOptions encode_options(const YAML::Node& config) {
  EncodeOptions options;
  const int64_t workers = language_model_data(data_options(config)).workers();
  options.workers = static_cast<int>(
      workers == 0 ? available_cores() : std::min<int64_t>(workers, 4 * available_cores()));
  options.progress = cfg::get_or<std::string>(config, "trainer.progress", "auto");
  parse_progress_mode(options.progress, "trainer.progress");  // bad values fail before any write
  if (!launcher_rank_zero()) options.progress = "none";
  return options;
}

struct EncodedSplit {
  std::vector<int32_t> tokens;
  uint64_t utf8_bytes = 0;
};

// A bundled corpus's split (small enough to be in memory already), encoded in order.
EncodedSplit encode_documents(const std::vector<Document>& docs, const Tokenizer& tokenizer,
                              const EncodeOptions& options, ProgressMeter& meter) {
  EncodedSplit out;
  ParallelEncoder encoder(tokenizer, options.workers,
                          [&](int, const Document& doc, std::vector<int32_t>&& ids) {
                            out.tokens.insert(out.tokens.end(), ids.begin(), ids.end());
                            out.tokens.push_back(tokenizer.eos());
                            out.utf8_bytes += doc.text.size();
                            meter.add(static_cast<double>(doc.text.size()));
                          });
  for (const auto& doc : docs) encoder.push(0, Document(doc));
  encoder.finish();
  return out;
}

// meta.json: `meta` (what the shards were made from) plus the tokenizer and split sizes.
void write_meta(const fs::path& dir, nlohmann::json meta, const Tokenizer& tokenizer,
                const ShardInfo& train, const ShardInfo& val) {
  meta["corpus_hash"] = train.corpus_hash;
  meta["tokenizer"] = tokenizer.fingerprint();
  meta["vocab_size"] = tokenizer.vocab_size();
  for (const auto& [name, info] : {std::pair{"train", &train}, std::pair{"val", &val}}) {
    meta[name] = {{"tokens", info->token_count},
                  {"utf8_bytes", info->utf8_bytes},
                  {"documents", info->document_count}};
  }
  const fs::path tmp = dir / ("meta.json.tmp" + std::to_string(::getpid()));
  std::ofstream(tmp) << meta.dump(2) << "\n";
  fs::rename(tmp, dir / "meta.json");
}

// What a shard of `role` must have been written with: this tokenizer and corpus hash.
ShardExpectation expectation(const Tokenizer& tokenizer, uint64_t corpus, ShardRole role) {
  ShardExpectation expect;
  expect.fingerprint = tokenizer.fingerprint();
  expect.vocab_size = static_cast<uint64_t>(tokenizer.vocab_size());
  expect.corpus_hash = corpus;
  expect.role = role;
  return expect;
}

// <derived>/tokens/files-<tokenizer>-<hash of settings and file contents>: a changed file or
// setting gets a new folder, so stale shards are never reused or overwritten.
fs::path files_shard_dir(const YAML::Node& config, const FilesSpec& spec, uint64_t content,
                         const Tokenizer& tokenizer) {
  const std::string key = Fnv64()
                              .update(spec.key())
                              .update(&content, sizeof(content))
                              .update("format=" + std::to_string(kShardFormatVersion))
                              .hex(12);
  return derived_data_dir(config) / "tokens" / ("files-" + tokenizer.fingerprint() + "-" + key);
}

// prepare_data for data=files (see data/corpora/user_files.h).
PreparedData prepare_user_files(const YAML::Node& config) {
  const FilesSpec spec = files_spec(config);
  PreparedData data;
  data.tokenizer = load_tokenizer(
      config, [&] { return files_training_texts(spec, tokenizer_max_train_bytes(config)); });
  const Tokenizer& tokenizer = *data.tokenizer;
  const uint64_t content = files_hash(spec);
  data.dir = files_shard_dir(config, spec, content, tokenizer);
  const fs::path train_path = data.dir / "train.bin";
  const fs::path val_path = data.dir / "val.bin";

  const FileLock lock(data.dir.string() + ".lock");
  remove_stale_temporaries(data.dir);
  std::string split;
  if (!fs::exists(train_path) || !fs::exists(val_path) || !complete_meta(data.dir, tokenizer)) {
    ShardInfo base;
    base.vocab_size = static_cast<uint64_t>(tokenizer.vocab_size());
    base.fingerprint = tokenizer.fingerprint();
    base.corpus_hash = content;
    split = write_files_shards(spec, tokenizer, train_path, val_path, base, encode_options(config))
                .split;
    data.built = true;
  }
  data.train = TokenShard::open(train_path, expectation(tokenizer, content, ShardRole::kTrain));
  data.val = TokenShard::open(val_path, expectation(tokenizer, content, ShardRole::kVal));
  if (data.built) {
    nlohmann::json meta;
    meta["source"] = "files";
    meta["settings"] = spec.key();
    meta["split"] = split;
    meta["train_files"] = nlohmann::json::array();
    for (const auto& path : spec.train_files) meta["train_files"].push_back(path.string());
    meta["val_files"] = nlohmann::json::array();
    for (const auto& path : spec.val_files) meta["val_files"].push_back(path.string());
    write_meta(data.dir, meta, tokenizer, data.train->info(), data.val->info());
  }
  data.split = recorded_split(data.dir);
  return data;
}

}  // namespace

double PreparedData::val_bytes_per_token() const {
  check_user(val && val->size() > 0, "no validation tokens: data.val_fraction is 0");
  return static_cast<double>(val->info().utf8_bytes) / static_cast<double>(val->size());
}

fs::path shard_dir(const YAML::Node& config, const Tokenizer& tokenizer) {
  if (uses_user_files(config)) {
    const FilesSpec spec = files_spec(config);
    return files_shard_dir(config, spec, files_hash(spec), tokenizer);
  }
  const CorpusSpec spec = corpus_spec(config);
  std::string corpora;
  for (const auto& name : spec.corpora) corpora += (corpora.empty() ? "" : "+") + name;
  const std::string settings =
      Fnv64().update(spec.key()).update("format=" + std::to_string(kShardFormatVersion)).hex(8);
  return derived_data_dir(config) / "tokens" /
         (corpora + "-" + tokenizer.fingerprint() + "-" + settings);
}

namespace {

std::string count_of(uint64_t count, const std::string& what) {
  return std::to_string(count) + " " + what + (count == 1 ? "" : "s");
}

PreparedData prepare_corpus(const YAML::Node& config);

}  // namespace

std::string describe_split(const PreparedData& data) {
  const ShardInfo& train = data.train->info();
  const ShardInfo& val = data.val->info();
  std::string line = "data split: train " + count_of(train.document_count, "document") + ", " +
                     count_of(train.token_count, "token") + " | validation ";
  if (val.token_count == 0) return line + "none (data.val_fraction is 0)";
  const double share = 100.0 * static_cast<double>(val.token_count) /
                       static_cast<double>(train.token_count + val.token_count);
  char percent[32];
  std::snprintf(percent, sizeof(percent), "%.1f%%", share);
  line += count_of(val.document_count, "document") + ", " + count_of(val.token_count, "token") +
          " (" + percent + " of the tokens";
  if (data.split == "tokens")
    line += ": the last data.val_fraction of the tokens, too few documents to hold out whole ones";
  else if (data.split == "bin")
    line += ": the last data.val_fraction of the .bin tokens";
  else if (data.split == "files")
    line += ": the data.val files";
  else if (data.split == "documents")
    line += ", whole documents";
  return line + ")";
}

PreparedData prepare_data(const YAML::Node& config) {
  encode_options(config);  // checks data.workers and trainer.progress even when the shards exist
  return uses_user_files(config) ? prepare_user_files(config) : prepare_corpus(config);
}

namespace {

PreparedData prepare_corpus(const YAML::Node& config) {
  const CorpusSpec spec = corpus_spec(config);
  const fs::path cache = data_cache_dir(config);
  // The split is loaded lazily: a cached byte/gpt2 tokenizer with existing shards needs no text.
  std::unique_ptr<CorpusSplit> split;
  auto get_split = [&]() -> const CorpusSplit& {
    if (!split) split = std::make_unique<CorpusSplit>(load_split(spec, cache));
    return *split;
  };

  PreparedData data;
  data.tokenizer = load_tokenizer(config, [&] {
    std::vector<std::string> texts;
    for (const auto& doc : get_split().train) texts.push_back(doc.text);
    return texts;
  });
  const Tokenizer& tokenizer = *data.tokenizer;
  data.dir = shard_dir(config, tokenizer);
  const fs::path train_path = data.dir / "train.bin";
  const fs::path val_path = data.dir / "val.bin";

  // What the shards must have been built from: this corpus (its files' manifests) and tokenizer.
  const uint64_t corpus = corpus_hash(spec, cache);
  const ShardExpectation expect_train = expectation(tokenizer, corpus, ShardRole::kTrain);
  const ShardExpectation expect_val = expectation(tokenizer, corpus, ShardRole::kVal);

  const FileLock lock(data.dir.string() + ".lock");
  remove_stale_temporaries(data.dir);
  if (!fs::exists(train_path) || !fs::exists(val_path) || !complete_meta(data.dir, tokenizer)) {
    const EncodeOptions options = encode_options(config);
    double total_bytes = 0;
    for (const auto* docs : {&get_split().train, &get_split().val})
      for (const auto& doc : *docs) total_bytes += static_cast<double>(doc.text.size());
    ProgressMeter meter("prepare", total_bytes, "MB", 1e6, options.progress);
    const EncodedSplit train = encode_documents(get_split().train, tokenizer, options, meter);
    const EncodedSplit val = encode_documents(get_split().val, tokenizer, options, meter);
    meter.finish();
    ShardInfo info;
    info.vocab_size = static_cast<uint64_t>(tokenizer.vocab_size());
    info.fingerprint = tokenizer.fingerprint();
    info.corpus_hash = corpus;
    ShardInfo train_info = info, val_info = info;
    train_info.role = ShardRole::kTrain;
    val_info.role = ShardRole::kVal;
    train_info.utf8_bytes = train.utf8_bytes;
    train_info.document_count = get_split().train.size();
    val_info.utf8_bytes = val.utf8_bytes;
    val_info.document_count = get_split().val.size();
    write_token_shard(val_path, val.tokens, val_info);
    write_token_shard(train_path, train.tokens, train_info);
    data.built = true;
  }
  data.train = TokenShard::open(train_path, expect_train);
  data.val = TokenShard::open(val_path, expect_val);
  if (data.built) {
    nlohmann::json meta;
    meta["corpora"] = spec.corpora;
    meta["settings"] = spec.key();
    meta["split"] = "documents";
    write_meta(data.dir, meta, tokenizer, data.train->info(), data.val->info());
  }
  data.split = "documents";
  return data;
}

}  // namespace

}  // namespace attnlab
