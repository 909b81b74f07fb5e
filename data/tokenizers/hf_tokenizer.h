// HfTokenizer (`tokenizer.name: hf`): the BPE tokenizers of Hugging Face's tokenizer.json format
// (GPT-2, Llama-3, Qwen2: byte-level BPE; Llama-2, Mistral: SentencePiece-style BPE with byte
// fallback), giving the ids of the Python `tokenizers` package's
// `Tokenizer.encode(text, add_special_tokens=False).ids`.
//
// Supported (anything else is a UserError naming the file and the JSON path):
//   model       BPE: vocab, merges ("a b" strings or [a, b] pairs), unk_token, fuse_unk,
//               byte_fallback (<0xXX> tokens), ignore_merges; dropout 0/null;
//               continuing_subword_prefix and end_of_word_suffix null/empty.
//   normalizer  null, Prepend, Replace (String or Regex pattern), NFC (data/tokenizers/nfc.h),
//   Sequence. pre_tokenizer null, ByteLevel (add_prefix_space, use_regex: GPT-2's pattern), Split
//   (String or
//               Regex pattern, behavior Isolated, invert false), Metaspace (prepend_scheme
//               first|always|never, split), Sequence.
//   decoder     null (tokens joined by " ", as `tokenizers` does), ByteLevel, Metaspace, Replace
//               (String pattern), ByteFallback, Fuse, Strip, Sequence.
// Regex patterns run on PCRE2 (UTF + Unicode properties, JIT) where `tokenizers` uses Oniguruma;
// the Llama-3 / Qwen2 / GPT-2 patterns give the same splits (tests/data/hf_tokenizer_test.cpp).
// post_processor, truncation and padding are ignored (attnlab adds BOS/EOS itself).
//
// Differences from `tokenizers`, by design:
//   - attnlab's contract (tokenizer.h): added-token strings inside the text (e.g. "<s>") are
//     encoded as ordinary text; `tokenizers` splits them out as their single ids.
//   - Text need not be valid UTF-8: an invalid byte counts as one character that no regex class
//     matches (byte-level models still round-trip it; byte fallback gives its <0xXX> token).
//   - decode() returns raw bytes: byte tokens that do not form valid UTF-8 come back as those
//     bytes, where `tokenizers` prints U+FFFD. Special added tokens and the appended MASK decode
//     to "" (like `tokenizers`' decode(skip_special_tokens=True)).
//
// Special tokens: an explicit option (config tokenizer.bos / tokenizer.eos / tokenizer.mask)
// wins; otherwise bos_token / eos_token / pad_token of tokenizer_config.json next to
// tokenizer.json (a string or {"content": ...}); otherwise well-known names (EOS: <|endoftext|>,
// <|end_of_text|>, </s>; BOS: <|begin_of_text|>, <s>, else EOS). PAD is pad_token, else EOS.
// MASK is <mask> or <|mask|> when present, else one id appended after the vocabulary.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "data/tokenizers/tokenizer.h"

namespace attnlab {

struct HfTokenizerOptions {
  // Token strings; empty: from tokenizer_config.json, else well-known names (see above).
  std::string bos;
  std::string eos;
  std::string mask;
};

class HfTokenizer : public Tokenizer {
 public:
  // `path`: a tokenizer.json file, or a folder holding one. UserError naming the file when it is
  // missing, malformed or uses an unsupported feature.
  explicit HfTokenizer(const std::filesystem::path& path, const HfTokenizerOptions& options = {});
  ~HfTokenizer() override;

  std::vector<int32_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override;
  std::string fingerprint() const override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace attnlab
