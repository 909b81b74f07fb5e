// SentencePiece BPE tokenizer through libsentencepiece: in-process training from memory, cached
// models, encoding by the library itself (see bpe_tokenizer.h). The library is reached through the
// plugin of data/tokenizers/sentencepiece_api.h, never linked into a binary that holds LibTorch.
#include "data/tokenizers/bpe_tokenizer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <mutex>

#include "common/error.h"
#include "data/data_cache.h"
#include "data/hash.h"
#include "data/tokenizers/sentencepiece_api.h"

namespace attnlab {

namespace fs = std::filesystem;

// A loaded model in the plugin.
struct BpeTokenizer::Processor {
  void* handle = nullptr;
  ~Processor() {
    if (handle != nullptr) sentencepiece_api().release(handle);
  }
};

namespace {

// U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece's visible stand-in for a space.
const std::string kSpaceSymbol = "\xe2\x96\x81";

// Trainer flags that define the model; part of the cache key, so changing one retrains.
std::vector<std::string> model_flags(const BpeTrainOptions& options) {
  return {
      "--model_type=bpe",
      "--vocab_size=" + std::to_string(options.vocab_size),
      "--byte_fallback=true",
      "--character_coverage=1.0",
      "--normalization_rule_name=identity",
      "--remove_extra_whitespaces=false",
      "--add_dummy_prefix=false",
      "--split_digits=true",
      "--hard_vocab_limit=false",  // tiny test corpora may not support the full vocab
      "--max_sentence_length=65536",
      "--unk_id=0",
      "--bos_id=1",
      "--eos_id=2",
      "--pad_id=3",
      "--control_symbols=<mask>",  // id 4; control symbols are never matched in text
  };
}

// Sends this process's stderr (where libsentencepiece logs) to `log_path` while alive.
class StderrToFile {
 public:
  explicit StderrToFile(const fs::path& log_path) {
    std::fflush(stderr);
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~StderrToFile() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
  }

 private:
  int saved_ = -1;
};

// The sidecar's text for a model's bytes.
std::string content_hash_line(const std::string& model) {
  return "fnv64 " + Fnv64().update(model.data(), model.size()).hex() + "\n";
}

// Writes `data` to `path` through a temporary file and a rename, so readers never see a part.
void write_atomically(const fs::path& path, const std::string& data) {
  const fs::path tmp = path.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.flush();
    check_user(static_cast<bool>(out), "cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

std::string tail_of_file(const fs::path& path, size_t max_bytes) {
  std::string text = fs::exists(path) ? read_file(path) : "";
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

}  // namespace

BpeTokenizer::BpeTokenizer(const std::string& serialized_model, const std::string& origin)
    : processor_(std::make_unique<Processor>()) {
  const SentencePieceApi& api = sentencepiece_api();
  std::string error;
  processor_->handle = api.load(serialized_model, &error);
  check_user(processor_->handle != nullptr,
             "SentencePiece model " + origin + " cannot be read: " + error);
  const int size = api.piece_size(processor_->handle);
  struct Piece {
    std::string text;
    float score = 0;
    int kind = 0;
  };
  std::vector<Piece> all(size);
  for (int id = 0; id < size; ++id)
    api.piece(processor_->handle, id, &all[id].text, &all[id].score, &all[id].kind);
  const bool has_specials = size > 4 && all[1].text == "<s>" && all[2].text == "</s>" &&
                            all[3].text == "<pad>" && all[4].text == "<mask>";
  check_user(has_specials, "SentencePiece model " + origin +
                               " lacks attnlab's special tokens (<s>=1, </s>=2, <pad>=3, "
                               "<mask>=4); train it with tokenizer=bpe");
  // Decoding tables, and the fingerprint: the vocabulary defines the encoding, and must not
  // depend on anything else a serialized model records (such as training paths).
  Fnv64 vocabulary;
  int byte_pieces = 0;
  pieces_.resize(size);
  for (int id = 0; id < size; ++id) {
    const std::string& piece = all[id].text;
    const float score = all[id].score;
    const int kind = all[id].kind;
    check_user(kind != 4, "SentencePiece model " + origin + " has unused pieces ('" + piece +
                              "'); attnlab's bpe tokenizer expects a plain BPE model");
    vocabulary.update(piece).update(&score, sizeof(score)).update(&kind, sizeof(kind));
    if (kind == 3) {
      unsigned value = 0;
      check_user(std::sscanf(piece.c_str(), "<0x%2X>", &value) == 1 && value < 256,
                 "SentencePiece model " + origin + ": bad byte piece '" + piece + "'");
      pieces_[id] = std::string(1, static_cast<char>(value));
      ++byte_pieces;
    } else if (kind == 0) {
      std::string text;
      for (size_t pos = 0; pos < piece.size();) {
        if (piece.compare(pos, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
          text += ' ';
          pos += kSpaceSymbol.size();
        } else {
          text += piece[pos++];
        }
      }
      pieces_[id] = std::move(text);
    }  // specials and <unk> decode to nothing
  }
  check_user(byte_pieces == 256, "SentencePiece model " + origin +
                                     " lacks byte-fallback pieces (train with --byte_fallback)");
  special_ = SpecialTokens{1, 2, 3, 4};
  fingerprint_ = "bpe" + std::to_string(vocab_size()) + "-" + vocabulary.hex(8);
}

BpeTokenizer::~BpeTokenizer() = default;

std::string BpeTokenizer::train(const std::vector<std::string>& documents,
                                const BpeTrainOptions& options, const fs::path& work_dir) {
  // 5 specials + 256 byte pieces must fit, plus at least a few merges.
  check_user(options.vocab_size >= 300 && options.vocab_size <= 1000000,
             "config key 'tokenizer.vocab_size': expected 300..1000000 for bpe, got " +
                 std::to_string(options.vocab_size));
  std::string args = "--num_threads=" + std::to_string(options.threads) + " --minloglevel=1";
  for (const auto& flag : model_flags(options)) args += " " + flag;
  fs::create_directories(work_dir);
  const fs::path log = work_dir / ("sentencepiece-train-" + std::to_string(::getpid()) + ".log");
  const SentencePieceApi& api = sentencepiece_api();
  std::string model, error;
  {
    // The trainer logs to stderr and keeps global flags: one training at a time per process.
    static std::mutex training;
    std::lock_guard<std::mutex> lock(training);
    StderrToFile quiet(log);
    error = api.train(args, documents, &model);
  }
  const std::string log_tail = tail_of_file(log, 2000);
  fs::remove(log);
  if (!error.empty() || model.empty()) {
    throw UserError("SentencePiece BPE training failed: " + error + "\n" + log_tail);
  }
  return model;
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::train_or_load(const std::vector<std::string>& documents,
                                                          const BpeTrainOptions& options,
                                                          const fs::path& dir) {
  // Cache key: the model-defining flags and the training text (not the thread count).
  Fnv64 key;
  for (const auto& flag : model_flags(options)) key.update(flag);
  for (const auto& doc : documents) key.update(doc);
  const fs::path file =
      dir / ("bpe-" + std::to_string(options.vocab_size) + "-" + key.hex() + ".model");
  const fs::path sidecar = file.string() + ".fnv64";
  if (fs::exists(file) && fs::exists(sidecar)) {
    const std::string model = read_file(file);
    check_user(read_file(sidecar) == content_hash_line(model),
               "tokenizer cache " + file.string() + " does not match its content hash in " +
                   sidecar.string() + " (edited or damaged); delete both to retrain it");
    return std::make_unique<BpeTokenizer>(model, file.string());
  }

  fs::create_directories(dir);
  const std::string model = train(documents, options, dir);
  // Model first, hash last: a crash in between leaves a model without a hash, which is retrained.
  write_atomically(file, model);
  write_atomically(sidecar, content_hash_line(model));
  return std::make_unique<BpeTokenizer>(model, file.string());
}

std::vector<int32_t> BpeTokenizer::encode(const std::string& text) const {
  return encode_in_pieces(text, size_t{1} << 16);
}

std::vector<int32_t> BpeTokenizer::encode_in_pieces(const std::string& text,
                                                    size_t piece_bytes) const {
  std::vector<int32_t> out;
  std::vector<int> ids;
  std::string piece;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.size();
    if (text.size() - pos > piece_bytes) {
      end = text.find(' ', pos + std::max<size_t>(1, piece_bytes));
      if (end == std::string::npos) end = text.size();
    }
    piece.assign(text, pos, end - pos);
    ids.clear();
    const std::string error = sentencepiece_api().encode(processor_->handle, piece, &ids);
    if (!error.empty()) throw std::runtime_error("SentencePiece encode failed: " + error);
    out.insert(out.end(), ids.begin(), ids.end());
    pos = end;
  }
  return out;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  // Byte pieces are concatenated as raw bytes, so every byte string round-trips (the library's
  // own Decode replaces invalid UTF-8 with U+FFFD).
  std::string text;
  for (int32_t id : ids) {
    check_user(id >= 0 && id < vocab_size(), "bpe tokenizer: token id " + std::to_string(id) +
                                                 " outside [0, " + std::to_string(vocab_size()) +
                                                 ")");
    text += pieces_[id];
  }
  return text;
}

}  // namespace attnlab
