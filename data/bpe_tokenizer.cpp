// SentencePiece BPE tokenizer: training, caching and encoding (see bpe_tokenizer.h).
//
// DISABLED (ATTNLAB_WITH_SENTENCEPIECE unset): Debian bookworm's libsentencepiece 0.1.97 exports
// a bundled protobuf 3.14 runtime, and libtorch loads the system libprotobuf 3.21. In one process
// the two collide: with sentencepiece first in load order the process segfaults during static
// initialisation (before main), with libprotobuf first sentencepiece aborts with "compiled
// against version 3.14.0 ... not compatible with 3.21.12". Since every attnlab binary links
// libtorch, referencing sentencepiece from attnlab_data would crash every executable and test.
// With the guard off, nothing references libsentencepiece and --as-needed drops it. Ways out:
// run SentencePiece out of process (apt `sentencepiece` provides spm_train/spm_encode), load it
// with dlopen(RTLD_LOCAL | RTLD_DEEPBIND) behind a C shim, or a native BPE trainer.
#include "data/bpe_tokenizer.h"

#include "common/error.h"

#ifdef ATTNLAB_WITH_SENTENCEPIECE

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>

#include "common/error.h"
#include "data/data_cache.h"
#include "data/hash.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

// Feeds SentencePiece the non-empty lines of the documents without copying the corpus.
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(const std::vector<std::string>& documents) : documents_(documents) {
    advance();
  }
  bool done() const override { return doc_ >= documents_.size(); }
  void Next() override { advance(); }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void advance() {
    while (doc_ < documents_.size()) {
      const std::string& text = documents_[doc_];
      if (pos_ >= text.size()) {
        ++doc_, pos_ = 0;
        continue;
      }
      size_t end = text.find('\n', pos_);
      if (end == std::string::npos) end = text.size();
      line_.assign(text, pos_, end - pos_);
      pos_ = end + 1;
      if (!line_.empty()) return;
    }
  }
  const std::vector<std::string>& documents_;
  size_t doc_ = 0;
  size_t pos_ = 0;
  std::string line_;
};

// Settings that define the model; part of the cache key, so changing one retrains.
std::unordered_map<std::string, std::string> trainer_args(const BpeTrainOptions& options) {
  return {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"byte_fallback", "true"},
      {"character_coverage", "1.0"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "false"},
      {"split_digits", "true"},
      {"hard_vocab_limit", "false"},  // tiny test corpora may not support the full vocab
      {"max_sentence_length", "65536"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "3"},
      {"control_symbols", "<mask>"},  // id 4; control symbols are never matched in text
      {"num_threads", std::to_string(options.threads)},
      {"minloglevel", "2"},
  };
}

}  // namespace

BpeTokenizer::BpeTokenizer(const std::string& serialized_model, const std::string& origin)
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  const auto status = processor_->LoadFromSerializedProto(serialized_model);
  check_user(status.ok(), "cannot load SentencePiece model " + origin + ": " + status.ToString());
  const int mask = processor_->PieceToId("<mask>");
  check_user(processor_->bos_id() == 1 && processor_->eos_id() == 2 && processor_->pad_id() == 3 &&
                 mask == 4,
             "SentencePiece model " + origin +
                 " lacks attnlab's special tokens (<s>=1, </s>=2, <pad>=3, <mask>=4)");
  special_ = SpecialTokens{1, 2, 3, 4};
  fingerprint_ =
      "bpe" + std::to_string(vocab_size()) + "-" + Fnv64().update(serialized_model).hex(8);
}

BpeTokenizer::~BpeTokenizer() = default;

std::string BpeTokenizer::train(const std::vector<std::string>& documents,
                                const BpeTrainOptions& options) {
  // 5 specials + 256 byte pieces must fit, plus at least a few merges.
  check_user(options.vocab_size >= 300 && options.vocab_size <= 1000000,
             "config key 'tokenizer.vocab_size': expected 300..1000000 for bpe, got " +
                 std::to_string(options.vocab_size));
  LineIterator lines(documents);
  std::string model;
  const auto status =
      sentencepiece::SentencePieceTrainer::Train(trainer_args(options), &lines, &model);
  check_user(status.ok(), "SentencePiece BPE training failed: " + status.ToString());
  return model;
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::train_or_load(const std::vector<std::string>& documents,
                                                          const BpeTrainOptions& options,
                                                          const fs::path& dir) {
  // Cache key: the sorted model-defining settings (unordered_map order is unspecified) and
  // the training text. Thread count and log level do not change the model.
  std::map<std::string, std::string> sorted;
  for (const auto& [name, value] : trainer_args(options)) sorted[name] = value;
  Fnv64 stable;
  for (const auto& [name, value] : sorted) {
    if (name != "num_threads" && name != "minloglevel") stable.update(name + "=" + value);
  }
  for (const auto& doc : documents) stable.update(doc);
  const fs::path file =
      dir / ("bpe-" + std::to_string(options.vocab_size) + "-" + stable.hex() + ".model");
  if (fs::exists(file)) return std::make_unique<BpeTokenizer>(read_file(file), file.string());

  const std::string model = train(documents, options);
  fs::create_directories(dir);
  const fs::path tmp = file.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(model.data(), static_cast<std::streamsize>(model.size()));
    check_user(static_cast<bool>(out), "cannot write " + tmp.string());
  }
  fs::rename(tmp, file);  // atomic: concurrent ranks never see a half-written model
  return std::make_unique<BpeTokenizer>(model, file.string());
}

std::vector<int32_t> BpeTokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  const auto status = processor_->Encode(text, &ids);
  check_user(status.ok(), "bpe tokenizer: encoding failed: " + status.ToString());
  return std::vector<int32_t>(ids.begin(), ids.end());
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::vector<int> pieces;
  pieces.reserve(ids.size());
  for (int32_t id : ids) {
    check_user(id >= 0 && id < vocab_size(), "bpe tokenizer: token id " + std::to_string(id) +
                                                 " outside [0, " + std::to_string(vocab_size()) +
                                                 ")");
    pieces.push_back(id);
  }
  std::string text;
  const auto status = processor_->Decode(pieces, &text);
  check_user(status.ok(), "bpe tokenizer: decoding failed: " + status.ToString());
  return text;
}

int64_t BpeTokenizer::vocab_size() const { return processor_->GetPieceSize(); }

}  // namespace attnlab

#else  // !ATTNLAB_WITH_SENTENCEPIECE

namespace sentencepiece {
class SentencePieceProcessor {};  // never constructed; completes the type for unique_ptr
}  // namespace sentencepiece

namespace attnlab {

namespace {
[[noreturn]] void unavailable() {
  throw UserError(
      "tokenizer 'bpe' is unavailable in this build: Debian's libsentencepiece 0.1.97 bundles "
      "protobuf 3.14 and crashes in a process that also loads libtorch's libprotobuf 3.21 "
      "(see data/bpe_tokenizer.cpp); use tokenizer=byte or tokenizer=gpt2");
}
}  // namespace

BpeTokenizer::BpeTokenizer(const std::string&, const std::string&) { unavailable(); }
BpeTokenizer::~BpeTokenizer() = default;
std::string BpeTokenizer::train(const std::vector<std::string>&, const BpeTrainOptions&) {
  unavailable();
}
std::unique_ptr<BpeTokenizer> BpeTokenizer::train_or_load(const std::vector<std::string>&,
                                                          const BpeTrainOptions&,
                                                          const std::filesystem::path&) {
  unavailable();
}
std::vector<int32_t> BpeTokenizer::encode(const std::string&) const { unavailable(); }
std::string BpeTokenizer::decode(const std::vector<int32_t>&) const { unavailable(); }
int64_t BpeTokenizer::vocab_size() const { unavailable(); }

}  // namespace attnlab

#endif  // ATTNLAB_WITH_SENTENCEPIECE
