// The data group (configs/data/*.yaml) as typed options (config/options.h). A data config is one of
// four kinds, each with its own options type that binds the whole group strictly (a key of another
// kind, a wrong type or an out-of-range value is one UserError naming the dotted key):
//   corpus         — language-model text from the corpus registry (data.corpus: moby_dick, sotu,
//                    brown; configs/data/{moby_dick,sotu,brown,english_mix}.yaml);
//   files          — language-model text or token files of one's own (data.train; data=files);
//   spam_assassin  — the labelled SpamAssassin dataset (data.dataset=spam_assassin);
//   labelled_files — labelled files of one's own (data.dataset=files; data=labelled_files).
// The kind follows from the keys present, as the loaders decide: data.dataset names a labelled
// dataset, else data.train means files, else corpus. The keys that are file lists or corpus names
// (corpus, train, val, test), data.name (the config's label) and data.dataset stay with their
// loaders. configs/data/*.yaml hold the same defaults as the structs (a test keeps them equal).
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/registry.h"
#include "config/option_schema.h"

namespace attnlab {

// data.decomposition: the options of data.sampler=dataset_decomposition (data/window_sampler.h).
struct DecompositionOptions {
  TORCH_ARG(int64_t, min_len) = 32;
  TORCH_ARG(std::string, curriculum) = "short_to_long";
  TORCH_ARG(int64_t, cycles) = 4;

 public:
  template <class V>
  void visit(V& v) {
    v("min_len", min_len(),
      "the shortest bucket, a power of two <= data.seq_len; shorter document remainders are not "
      "trained on",
      config::at_least(1));
    v("curriculum", curriculum(), "the order of an epoch's batches by length",
      config::one_of({"uniform", "short_to_long", "cyclic"}));
    v("cycles", cycles(), "cyclic: rounds of short-to-long per epoch", config::at_least(1));
  }
};

// What the language-model kinds (corpus, files) share.
struct LanguageModelDataOptions {
  TORCH_ARG(double, val_fraction) = 0.1;
  TORCH_ARG(int64_t, seq_len) = 256;
  TORCH_ARG(int64_t, batch_size) = 16;
  TORCH_ARG(std::string, sampler) = "random";
  TORCH_ARG(std::optional<std::string>, cache_dir) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, derived_dir) = std::nullopt;
  TORCH_ARG(int64_t, max_documents) = 0;
  TORCH_ARG(int64_t, max_bytes) = 0;
  TORCH_ARG(int64_t, workers) = 0;
  TORCH_ARG(DecompositionOptions, decomposition) = DecompositionOptions{};

 public:
  template <class V>
  void visit_shared(V& v) {
    v("val_fraction", val_fraction(), "share of documents held out for validation",
      config::at_least(0.0), config::less_than(1.0));
    v("seq_len", seq_len(), "tokens per training window", config::at_least(1));
    v("batch_size", batch_size(), "windows per batch (per rank)", config::at_least(1));
    v("sampler", sampler(), "how windows are drawn (data/window_sampler.h)",
      config::one_of({"random", "sequential", "bos_aligned", "dataset_decomposition"}));
    v("cache_dir", cache_dir(),
      "downloads; null: $ATTNLAB_DATA, else $XDG_CACHE_HOME/attnlab, else ~/.cache/attnlab");
    v("derived_dir", derived_dir(), "tokenizers/ and tokens/; null: cache_dir");
    v("max_documents", max_documents(), "first N documents (0: all); for quick tests",
      config::at_least(0));
    v("max_bytes", max_bytes(), "first N text bytes (0: all)", config::at_least(0));
    v("workers", workers(), "prepare: tokenizing threads (0: every core this process may use)",
      config::at_least(0));
    v("decomposition", decomposition(), "");
  }
};

// data=moby_dick, sotu, brown, english_mix: data.corpus names the corpora.
struct CorpusDataOptions : LanguageModelDataOptions {
  template <class V>
  void visit(V& v) {
    visit_shared(v);
  }
};

// data=files: data.train (and data.val) name the files.
struct FilesDataOptions : LanguageModelDataOptions {
  TORCH_ARG(std::string, format) = "auto";
  TORCH_ARG(std::optional<std::string>, separator) = std::nullopt;
  TORCH_ARG(std::string, text_key) = "text";
  TORCH_ARG(std::optional<int64_t>, vocab_size) = std::nullopt;

 public:
  template <class V>
  void visit(V& v) {
    v("format", format(), "auto (by extension: .jsonl, .bin, else txt), txt, jsonl or bin",
      config::one_of({"auto", "txt", "jsonl", "bin"}));
    v("separator", separator(),
      "text files: split documents on this string (\\n, \\t escapes); null: whole file");
    v("text_key", text_key(), ".jsonl: the key holding each line's text");
    v("vocab_size", vocab_size(), ".bin: number of token ids (ids must be below it)");
    visit_shared(v);
  }
};

// What the labelled (classification) kinds share.
struct LabelledDataOptions {
  TORCH_ARG(double, val_fraction) = 0.1;
  TORCH_ARG(double, test_fraction) = 0.2;
  TORCH_ARG(int64_t, split_seed) = 0;
  TORCH_ARG(int64_t, max_per_class) = 0;
  TORCH_ARG(int64_t, max_text_bytes) = 4096;
  TORCH_ARG(int64_t, seq_len) = 128;
  TORCH_ARG(int64_t, batch_size) = 16;
  TORCH_ARG(std::optional<std::string>, cache_dir) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, derived_dir) = std::nullopt;

 public:
  template <class V>
  void visit_shared(V& v) {
    v("val_fraction", val_fraction(), "share of each class held out for validation",
      config::at_least(0.0), config::less_than(1.0));
    v("test_fraction", test_fraction(), "share of each class held out for testing",
      config::at_least(0.0), config::less_than(1.0));
    v("split_seed", split_seed(), "seed of the stratified split");
    v("max_per_class", max_per_class(), "first N examples per class (0: all); for quick tests",
      config::at_least(0));
    v("max_text_bytes", max_text_bytes(),
      "bytes of text tokenized per example (the seq_len cut truncates further)",
      config::at_least(0));
    v("seq_len", seq_len(), "tokens per example, BOS included", config::at_least(1));
    v("batch_size", batch_size(), "examples per batch (per rank)", config::at_least(1));
    v("cache_dir", cache_dir(),
      "downloads; null: $ATTNLAB_DATA, else $XDG_CACHE_HOME/attnlab, else ~/.cache/attnlab");
    v("derived_dir", derived_dir(), "trained tokenizers; null: cache_dir");
  }
};

// data=spam_assassin (data.dataset=spam_assassin).
struct SpamAssassinDataOptions : LabelledDataOptions {
  TORCH_ARG(std::vector<std::string>, keep_headers) = std::vector<std::string>{"Subject"};

 public:
  template <class V>
  void visit(V& v) {
    v("keep_headers", keep_headers(), "mail headers kept in front of the body");
    visit_shared(v);
  }
};

// data=labelled_files (data.dataset=files): data.train, data.val and data.test name the files.
struct LabelledFilesDataOptions : LabelledDataOptions {
  TORCH_ARG(std::string, text_key) = "text";
  TORCH_ARG(std::string, label_key) = "label";

 public:
  template <class V>
  void visit(V& v) {
    v("text_key", text_key(), "CSV column / JSON key of the text");
    v("label_key", label_key(), "CSV column / JSON key of the label (JSON: string or integer)");
    visit_shared(v);
  }
};

// The options of the data config's kind: one alternative per kind.
using DataOptions = std::variant<CorpusDataOptions, FilesDataOptions, SpamAssassinDataOptions,
                                 LabelledFilesDataOptions>;

// A kind: its options, default constructed (the alternative binding fills).
struct DataKindSpec {
  DataOptions defaults;
};
// kind -> spec: corpus, files, labelled_files, spam_assassin.
Registry<DataKindSpec>& data_kind_registry();

// The kind of the data group of `config` (see the top of this file); UserError naming
// data.dataset for an unknown labelled dataset. Defined for YAML::Node.
template <class ConfigTree>
std::string data_kind(const ConfigTree& config);

// The keys of `kind` that its loaders read themselves (not options): name, corpus, train, ...
std::vector<std::string> data_loader_keys(const std::string& kind);

// Binds the data group into the options of its kind; UserError naming the key for an unknown
// key, a wrong type or a bad value. No data group: the corpus defaults. Defined for YAML::Node.
template <class ConfigTree>
DataOptions data_options(const ConfigTree& config);

// The language-model (corpus, files) or labelled part of bound options; UserError when the data
// config is of the other family (e.g. a classification dataset where text for a language model is
// needed).
const LanguageModelDataOptions& language_model_data(const DataOptions& options);
const LabelledDataOptions& labelled_data(const DataOptions& options);

// data.cache_dir and data.derived_dir of any kind (null: not set).
const std::optional<std::string>& data_cache_setting(const DataOptions& options);
const std::optional<std::string>& data_derived_setting(const DataOptions& options);

}  // namespace attnlab
