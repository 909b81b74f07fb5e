// data=files: training on the user's own files instead of a bundled corpus. Text files (.txt,
// .md, ... and .jsonl) become documents that are tokenised like a bundled corpus; nanoGPT-style
// .bin files (raw little-endian uint16 token ids, no header) go straight into token shards.
// The options are parsed once into a FilesSpec (files_spec()), which also expands the globs, so
// the rest of the code never reads data.* keys. Files are read one at a time and streamed: only
// one document (a whole file when there is no separator) or a chunk of token ids is in memory,
// except for BPE training, which gets every training document like it does for a bundled corpus.
//
// Split: without data.val, document i of the n training documents (in file order, files sorted
// by name within each pattern) is validation by the rule of load_split (corpus.h), as long as
// that holds out at least one whole document (floor(n·val_fraction) >= 1). With fewer documents
// (a single input.txt, or 4 files at 0.1, where one document would be 25% of the text) the last
// floor(tokens·val_fraction) tokens of the concatenated documents are validation instead, as for
// .bin files. With data.val, the files are used as given and val_fraction is ignored.
//
// Caching: files_hash() covers the settings, each file's absolute path and its SHA-256, so a
// changed file or setting selects a new shard folder (and a new BPE model) instead of reusing or
// rejecting the old one; unchanged files reuse the shards without tokenising again.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config_node.h"
#include "data/corpora/corpus.h"
#include "data/token_shard.h"
#include "data/tokenizers/tokenizer.h"

namespace attnlab {

enum class FileFormat { kTxt, kJsonl, kBin };

struct FilesSpec {
  std::vector<std::string> train_patterns;         // data.train: paths or globs
  std::vector<std::string> val_patterns;           // data.val (empty: hold out val_fraction)
  std::vector<std::filesystem::path> train_files;  // expanded: absolute, sorted per pattern
  std::vector<std::filesystem::path> val_files;
  std::string format = "auto";           // data.format: auto | txt | jsonl | bin
  bool bin = false;                      // the files are .bin token files (all or none are)
  std::optional<std::string> separator;  // data.separator for text files (null: whole file)
  std::string text_key = "text";         // data.text_key for .jsonl
  int64_t vocab_size = 0;                // data.vocab_size for .bin (required there)
  double val_fraction = 0.1;             // data.val_fraction, in [0, 1)
  int64_t max_documents = 0;             // first N documents of train (and of val) files
  int64_t max_bytes = 0;                 // first N text bytes of train (and of val) files

  // A stable string of the settings (not the file contents), for cache keys.
  std::string key() const;
};

// The string or list of strings at config `key` (data.train, data.val, ...); null or absent:
// empty.
std::vector<std::string> file_patterns_at(const ConfigNode& config, const std::string& key);

// The regular files matching each pattern (glob(3): * ? [..] ~, sorted by name within a
// pattern), absolute, in pattern order without repeats. A pattern matching no file is a
// UserError naming `key` and the pattern.
std::vector<std::filesystem::path> expand_file_patterns(const std::vector<std::string>& patterns,
                                                        const std::string& key);

// True when the composed config selects data=files (it has a data.train key, even a null one,
// and no data.dataset, which the labelled data of task=classification has).
bool uses_user_files(const ConfigNode& config);

// Parses data.* of a data=files config and expands the globs. A missing or empty data.train, a
// pattern matching no file, a bad format or mixing .bin with text files, a .bin without
// data.vocab_size: UserError naming the key (and the pattern).
FilesSpec files_spec(const ConfigNode& config);

// The format of one file: data.format, or with `auto` its extension (.jsonl -> jsonl, .bin ->
// bin, anything else -> txt).
FileFormat file_format(const FilesSpec& spec, const std::filesystem::path& file);

// The documents of text `files` in order, with the limits of `spec` applied, one at a time.
// A bad .jsonl line is a UserError naming the file and line.
void for_each_document(const FilesSpec& spec, const std::vector<std::filesystem::path>& files,
                       const std::function<void(Document&&)>& visit);

// Whether `documents` documents are too few to hold out whole ones at `val_fraction` (so the last
// val_fraction of the tokens is held out instead): val_fraction > 0 and documents·val_fraction < 1.
bool splits_by_tokens(size_t documents, double val_fraction);

// The split in memory (for BPE training and tests); text formats only. When splits_by_tokens,
// the last val_fraction of the text's bytes is validation (the shards cut by tokens).
CorpusSplit load_files_split(const FilesSpec& spec);

// The training documents' texts, for tokenizer training (BPE): the first ones whose text fits in
// `max_bytes` (tokenizer.max_train_bytes; at least one document; 0: all), read streaming. A
// UserError for .bin files, which hold token ids and no text to train on.
std::vector<std::string> files_training_texts(const FilesSpec& spec, int64_t max_bytes = 0);

// Content hash of the settings and of every file (path + SHA-256); never 0.
uint64_t files_hash(const FilesSpec& spec);

struct FilesShards {
  ShardInfo train;
  ShardInfo val;
  // How validation was chosen: "documents" (whole documents), "tokens" (too few documents: the
  // last val_fraction of the tokens), "bin" (.bin files: the same) or "files" (data.val).
  std::string split;
};

// How write_files_shards works: tokenizing threads (data/parallel_encoder.h) and the progress
// display (common/progress_meter.h: auto | bar | plain | none).
struct EncodeOptions {
  int workers = 1;
  std::string progress = "none";
};

// Writes the train and val shards of `spec` with `base` as the header template (fingerprint,
// vocabulary size, corpus hash): text files are encoded with `tokenizer` (EOS after every
// document), streaming, on options.workers threads, into the same bytes whatever their number;
// .bin ids are copied after checking them against data.vocab_size.
FilesShards write_files_shards(const FilesSpec& spec, const Tokenizer& tokenizer,
                               const std::filesystem::path& train_path,
                               const std::filesystem::path& val_path, const ShardInfo& base,
                               const EncodeOptions& options = {});

}  // namespace attnlab
