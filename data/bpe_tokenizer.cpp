// SentencePiece BPE tokenizer: out-of-process training, cached models, in-process encoding that
// reproduces SentencePiece's segmentation (see bpe_tokenizer.h for why).
#include "data/bpe_tokenizer.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <queue>

#include "common/error.h"
#include "common/subprocess.h"
#include "data/data_cache.h"
#include "data/hash.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

// U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece's visible stand-in for a space.
const std::string kSpaceSymbol = "\xe2\x96\x81";

// spm_train flags that define the model; part of the cache key, so changing one retrains.
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

// Length in bytes of the UTF-8 character starting at text[pos]; 1 for an invalid lead byte
// (such bytes then go through byte fallback unchanged, so every byte string round-trips).
size_t utf8_length(const std::string& text, size_t pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  size_t length = lead < 0x80           ? 1
                  : (lead >> 5) == 0x6  ? 2
                  : (lead >> 4) == 0xe  ? 3
                  : (lead >> 3) == 0x1e ? 4
                                        : 1;
  if (pos + length > text.size()) return 1;
  for (size_t i = 1; i < length; ++i) {
    if ((static_cast<unsigned char>(text[pos + i]) & 0xc0) != 0x80) return 1;
  }
  return length;
}

std::string tail_of_file(const fs::path& path, size_t max_bytes) {
  std::string text = fs::exists(path) ? read_file(path) : "";
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

}  // namespace

BpeTokenizer::BpeTokenizer(const std::string& serialized_model, const std::string& origin)
    : pieces_(parse_sentencepiece_model(serialized_model, origin)) {
  std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
  for (size_t id = 0; id < pieces_.size(); ++id) {
    const SentencePiece& p = pieces_[id];
    switch (p.type) {
      case PieceType::kNormal:
        mergeable_.emplace(p.piece, static_cast<int32_t>(id));
        break;
      case PieceType::kByte: {
        unsigned value = 0;
        check_user(std::sscanf(p.piece.c_str(), "<0x%2X>", &value) == 1 && value < 256,
                   "SentencePiece model " + origin + ": bad byte piece '" + p.piece + "'");
        byte_ids_[value] = static_cast<int32_t>(id);
        break;
      }
      case PieceType::kUserDefined:
      case PieceType::kUnused:
        throw UserError("SentencePiece model " + origin + " has user-defined or unused pieces ('" +
                        p.piece + "'); attnlab's bpe tokenizer expects a plain BPE model");
      default:
        break;  // unknown and control pieces are never produced from text
    }
  }
  const bool has_specials = pieces_.size() > 4 && pieces_[1].piece == "<s>" &&
                            pieces_[2].piece == "</s>" && pieces_[3].piece == "<pad>" &&
                            pieces_[4].piece == "<mask>";
  check_user(has_specials, "SentencePiece model " + origin +
                               " lacks attnlab's special tokens (<s>=1, </s>=2, <pad>=3, "
                               "<mask>=4); train it with tokenizer=bpe");
  for (int b = 0; b < 256; ++b) {
    check_user(byte_ids_[b] >= 0, "SentencePiece model " + origin +
                                      " lacks byte-fallback pieces (train with --byte_fallback)");
  }
  special_ = SpecialTokens{1, 2, 3, 4};
  // The vocabulary defines the encoding; the serialized file also records spm_train's scratch
  // paths, which must not make identical models look different.
  Fnv64 vocabulary;
  for (const SentencePiece& p : pieces_) {
    vocabulary.update(p.piece).update(&p.score, sizeof(p.score)).update(&p.type, sizeof(p.type));
  }
  fingerprint_ = "bpe" + std::to_string(vocab_size()) + "-" + vocabulary.hex(8);
}

std::string BpeTokenizer::train(const std::vector<std::string>& documents,
                                const BpeTrainOptions& options, const fs::path& work_dir) {
  // 5 specials + 256 byte pieces must fit, plus at least a few merges.
  check_user(options.vocab_size >= 300 && options.vocab_size <= 1000000,
             "config key 'tokenizer.vocab_size': expected 300..1000000 for bpe, got " +
                 std::to_string(options.vocab_size));
  const fs::path scratch = work_dir / ("spm-train-" + std::to_string(::getpid()));
  fs::create_directories(scratch);
  {
    // SentencePiece trains on lines; empty lines carry nothing.
    std::ofstream input(scratch / "input.txt", std::ios::binary);
    for (const auto& doc : documents) {
      size_t pos = 0;
      while (pos < doc.size()) {
        size_t end = doc.find('\n', pos);
        if (end == std::string::npos) end = doc.size();
        if (end > pos)
          input.write(doc.data() + pos, static_cast<std::streamsize>(end - pos)) << '\n';
        pos = end + 1;
      }
    }
    check_user(static_cast<bool>(input), "cannot write " + (scratch / "input.txt").string());
  }
  std::vector<std::string> argv = {"spm_train", "--input=" + (scratch / "input.txt").string(),
                                   "--model_prefix=" + (scratch / "bpe").string(),
                                   "--num_threads=" + std::to_string(options.threads)};
  for (auto& flag : model_flags(options)) argv.push_back(std::move(flag));
  int exit_code = -1;
  try {
    exit_code = run_process(argv, (scratch / "spm_train.log").string());
  } catch (const std::exception& e) {
    fs::remove_all(scratch);
    throw UserError(std::string("tokenizer=bpe trains with spm_train from Debian's "
                                "'sentencepiece' package (scripts/setup.sh installs it): ") +
                    e.what());
  }
  const std::string log_tail = tail_of_file(scratch / "spm_train.log", 2000);
  if (exit_code != 0 || !fs::exists(scratch / "bpe.model")) {
    fs::remove_all(scratch);
    throw UserError("SentencePiece BPE training (spm_train) failed with exit code " +
                    std::to_string(exit_code) + ":\n" + log_tail);
  }
  std::string model = read_file(scratch / "bpe.model");
  fs::remove_all(scratch);
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
  if (fs::exists(file)) return std::make_unique<BpeTokenizer>(read_file(file), file.string());

  fs::create_directories(dir);
  const std::string model = train(documents, options, dir);
  const fs::path tmp = file.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(model.data(), static_cast<std::streamsize>(model.size()));
    out.flush();
    check_user(static_cast<bool>(out), "cannot write " + tmp.string());
  }
  fs::rename(tmp, file);  // atomic: concurrent ranks never see a half-written model
  return std::make_unique<BpeTokenizer>(model, file.string());
}

void BpeTokenizer::emit_segment(const std::string& segment, std::vector<int32_t>& ids) const {
  const auto it = mergeable_.find(segment);
  if (it != mergeable_.end()) {
    ids.push_back(it->second);
    return;
  }
  for (unsigned char byte : segment) ids.push_back(byte_ids_[byte]);
}

std::vector<int32_t> BpeTokenizer::encode(const std::string& raw) const {
  // Normalisation is the identity apart from SentencePiece's whitespace escaping.
  std::string text;
  text.reserve(raw.size() + raw.size() / 4);
  for (char c : raw) c == ' ' ? text += kSpaceSymbol : text += c;

  // Symbols start as single characters, linked in a list; merged-away symbols become empty.
  struct Symbol {
    size_t begin, length;
    int64_t prev, next;
  };
  std::vector<Symbol> symbols;
  for (size_t pos = 0; pos < text.size();) {
    const size_t length = utf8_length(text, pos);
    const auto index = static_cast<int64_t>(symbols.size());
    symbols.push_back({pos, length, index - 1, -1});
    if (index > 0) symbols[index - 1].next = index;
    pos += length;
  }

  // Candidate merges, best first: highest piece score, then leftmost (SentencePiece's order).
  struct Candidate {
    float score;
    int64_t left, right;
    size_t length;  // stale when the symbols no longer add up to it
  };
  auto worse = [](const Candidate& a, const Candidate& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> agenda(worse);
  std::string joined;
  auto consider = [&](int64_t left, int64_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& a = symbols[left];
    const Symbol& b = symbols[right];
    joined.assign(text, a.begin, a.length + b.length);
    const auto it = mergeable_.find(joined);
    if (it == mergeable_.end()) return;
    agenda.push({pieces_[it->second].score, left, right, a.length + b.length});
  };
  for (size_t i = 1; i < symbols.size(); ++i) consider(static_cast<int64_t>(i) - 1, i);
  while (!agenda.empty()) {
    const Candidate top = agenda.top();
    agenda.pop();
    Symbol& left = symbols[top.left];
    Symbol& right = symbols[top.right];
    if (left.length == 0 || right.length == 0 || left.length + right.length != top.length ||
        left.next != top.right) {
      continue;
    }
    left.length += right.length;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    right.length = 0;
    consider(left.prev, top.left);
    consider(top.left, left.next);
  }

  std::vector<int32_t> ids;
  ids.reserve(symbols.size());
  for (int64_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    emit_segment(text.substr(symbols[i].begin, symbols[i].length), ids);
  }
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  for (int32_t id : ids) {
    check_user(id >= 0 && id < vocab_size(), "bpe tokenizer: token id " + std::to_string(id) +
                                                 " outside [0, " + std::to_string(vocab_size()) +
                                                 ")");
    const SentencePiece& p = pieces_[id];
    if (p.type == PieceType::kByte) {
      unsigned value = 0;
      std::sscanf(p.piece.c_str(), "<0x%2X>", &value);
      text += static_cast<char>(value);
    } else if (p.type == PieceType::kNormal) {
      for (size_t pos = 0; pos < p.piece.size();) {
        if (p.piece.compare(pos, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
          text += ' ';
          pos += kSpaceSymbol.size();
        } else {
          text += p.piece[pos++];
        }
      }
    }  // specials and <unk> decode to nothing
  }
  return text;
}

}  // namespace attnlab
