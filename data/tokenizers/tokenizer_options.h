// The tokenizer group (configs/tokenizer/*.yaml) as typed options (config/options.h): one options
// type per entry of the tokenizer registry (tokenizer.name: byte, bpe, gpt2, hf), and that entry's
// type binds the group strictly, so another tokenizer's key, a wrong type or an out-of-range value
// is one UserError naming the dotted key. The configs/tokenizer files hold the same defaults (a
// test keeps them equal).
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "config/option_schema.h"

namespace attnlab {

// tokenizer=byte: raw UTF-8 bytes, nothing to configure.
struct ByteTokenizerOptions {
  template <class V>
  void visit(V&) {}
};

// tokenizer=bpe: SentencePiece BPE trained on the training split (cached), or a given model.
struct BpeTokenizerOptions {
  TORCH_ARG(int64_t, vocab_size) = 4096;
  TORCH_ARG(int64_t, threads) = 1;
  TORCH_ARG(std::optional<std::string>, model_path) = std::nullopt;
  TORCH_ARG(int64_t, max_train_bytes) = 32000000;

 public:
  template <class V>
  void visit(V& v) {
    v("vocab_size", vocab_size(), "pieces of the trained model, special tokens and bytes included",
      config::at_least(1));
    v("threads", threads(), "SentencePiece trainer threads", config::at_least(1));
    v("model_path", model_path(), "use this .model file instead of training; null: train");
    v("max_train_bytes", max_train_bytes(),
      "train on the first training documents within this many bytes (at least one; 0: all)",
      config::at_least(0));
  }
};

// tokenizer=gpt2: GPT-2's byte-level BPE (encoder.json + vocab.bpe).
struct Gpt2TokenizerOptions {
  TORCH_ARG(std::optional<std::string>, files_dir) = std::nullopt;

 public:
  template <class V>
  void visit(V& v) {
    v("files_dir", files_dir(),
      "folder with encoder.json and vocab.bpe; null: fetch into the data cache");
  }
};

// tokenizer=hf: a Hugging Face tokenizer.json.
struct HfTokenizerConfigOptions {
  TORCH_ARG(std::optional<std::string>, path) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, bos) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, eos) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, mask) = std::nullopt;

 public:
  template <class V>
  void visit(V& v) {
    v("path", path(), "tokenizer.json, or a folder holding one (required)");
    v("bos", bos(), "BOS token string; null: tokenizer_config.json's bos_token, else <s> etc.");
    v("eos", eos(), "EOS token string; null: tokenizer_config.json's eos_token, else </s> etc.");
    v("mask", mask(), "MASK token string; null: <mask> or <|mask|>, else one id is appended");
  }
};

// The options of the tokenizer tokenizer.name chose: one alternative per registry entry.
using TokenizerOptions = std::variant<ByteTokenizerOptions, BpeTokenizerOptions,
                                      Gpt2TokenizerOptions, HfTokenizerConfigOptions>;

// Binds the tokenizer group into the options of the tokenizer tokenizer.name names (required);
// UserError naming the key for an unknown name, key, type or value. Defined for YAML::Node.
template <class ConfigTree>
TokenizerOptions tokenizer_options(const ConfigTree& config);

}  // namespace attnlab
