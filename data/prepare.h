// prepare_data(): corpus -> tokenizer -> token shards, idempotently. `attnlab prepare` runs it
// and `attnlab train` calls it before training. Shards live in
//   <derived>/tokens/<corpora>-<tokenizer fingerprint>-<settings hash>/{train,val}.bin
// (+ meta.json, a human-readable summary). Each document's tokens are followed by EOS, so EOS
// separates documents in the stream. When both shards exist and validate, nothing is rebuilt.
// data=files (data/corpora/user_files.h) reads the user's files instead of a corpus; its shards
// live in
//   <derived>/tokens/files-<tokenizer fingerprint>-<hash of settings and file contents>/
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "config/config_node.h"
#include "data/token_shard.h"
#include "data/tokenizers/tokenizer.h"

namespace attnlab {

struct PreparedData {
  std::shared_ptr<const Tokenizer> tokenizer;
  std::shared_ptr<const TokenShard> train;
  std::shared_ptr<const TokenShard> val;  // empty (0 tokens) when data.val_fraction is 0
  std::filesystem::path dir;
  bool built = false;  // true when this call wrote the shards
  // How validation was chosen (meta.json's "split"): "documents", "tokens" (too few documents:
  // the last data.val_fraction of the tokens), "bin" (.bin files: the same) or "files"
  // (data.val); "" for shards from before the field.
  std::string split;

  // UTF-8 bytes of the validation text per validation token (EOS separators counted as tokens);
  // bits per byte = mean token loss in nats / ln 2 / val_bytes_per_token().
  double val_bytes_per_token() const;
};

// Reads data.corpus/val_fraction/max_documents/max_bytes (or data=files' keys),
// data.cache_dir/derived_dir and the tokenizer group. Fetches missing corpora, trains/loads the
// tokenizer, writes missing shards.
// A corrupted existing shard or one written by another tokenizer is a UserError naming it.
// Shards count as present only with a complete meta.json (written last); temporaries left by a
// killed prepare are removed. Callers print describe_split() once nothing can fail any more.
PreparedData prepare_data(const ConfigNode& config);

// "data split: train 9 documents, 1200 tokens | validation 1 document, 130 tokens (9.8% of the
// tokens, whole documents)": one line for the start of a run.
std::string describe_split(const PreparedData& data);

// The shard folder prepare_data would use for this config and tokenizer.
std::filesystem::path shard_dir(const ConfigNode& config, const Tokenizer& tokenizer);

}  // namespace attnlab
