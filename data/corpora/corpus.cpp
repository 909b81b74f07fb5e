// Corpus loaders and the by-document train/validation split (see corpus.h).
#include "data/corpora/corpus.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "common/config_access.h"
#include "common/error.h"
#include "data/data_cache.h"
#include "data/data_options.h"
#include "data/hash.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

// Files of `dir` whose names match `pattern`, sorted by name (directory order is unspecified).
std::vector<fs::path> sorted_files(const fs::path& dir, const std::regex& pattern) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && std::regex_match(entry.path().filename().string(), pattern))
      files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<Document> load_moby_dick(const fs::path& cache) {
  const fs::path data = ensure_dataset(cache, "moby-dick") / "data";
  // file_list.json gives reading order: contents, etymology, extracts, chapter_1..135, epilogue.
  const auto list = nlohmann::json::parse(read_file(data / "file_list.json"));
  std::vector<Document> docs;
  for (const auto& entry : list) {
    const std::string file = entry.get<std::string>();
    docs.push_back({"moby_dick/" + fs::path(file).stem().string(), read_file(data / file)});
  }
  return docs;
}

std::vector<Document> load_sotu(const fs::path& cache) {
  const fs::path data = ensure_dataset(cache, "sotu") / "data";
  std::vector<Document> docs;
  for (const auto& file : sorted_files(data, std::regex(R"(\d{4}_.*\.txt)")))
    docs.push_back({"sotu/" + file.stem().string(), read_file(file)});
  return docs;
}

std::vector<Document> load_brown(const fs::path& cache) {
  const fs::path package = ensure_dataset(cache, "brown");
  std::vector<Document> docs;
  for (const auto& file : sorted_files(package, std::regex(R"(c[a-r]\d\d)")))
    docs.push_back({"brown/" + file.filename().string(), strip_brown_tags(read_file(file))});
  return docs;
}

// Keeps the first `max_bytes` bytes of the documents, cutting the last one at a UTF-8
// character boundary and dropping the rest.
void cap_bytes(std::vector<Document>& docs, int64_t max_bytes) {
  size_t left = static_cast<size_t>(max_bytes);
  size_t kept = 0;
  for (; kept < docs.size() && left > 0; ++kept) {
    std::string& text = docs[kept].text;
    if (text.size() > left) {
      size_t cut = left;
      while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
      text.resize(cut);
    }
    left -= text.size();
  }
  docs.resize(kept);
}

}  // namespace

Registry<CorpusLoader>& corpus_registry() {
  static Registry<CorpusLoader> registry(
      "corpus", {{"moby_dick", load_moby_dick}, {"sotu", load_sotu}, {"brown", load_brown}});
  return registry;
}

std::string CorpusSpec::key() const {
  std::ostringstream out;
  for (const auto& name : corpora) out << name << ",";
  out << "val=" << val_fraction << ",docs=" << max_documents << ",bytes=" << max_bytes;
  return out.str();
}

CorpusSpec corpus_spec(const YAML::Node& config) {
  CorpusSpec spec;
  const YAML::Node corpus = cfg::require(config, "data.corpus");
  if (corpus.IsSequence()) {
    spec.corpora = cfg::get<std::vector<std::string>>(config, "data.corpus");
  } else {
    spec.corpora = {cfg::get<std::string>(config, "data.corpus")};
  }
  check_user(!spec.corpora.empty(), "config key 'data.corpus': expected at least one corpus");
  for (const auto& name : spec.corpora) corpus_registry().get(name);  // unknown -> UserError
  const SplitSettings split = split_settings(config);
  spec.val_fraction = split.val_fraction;
  spec.max_documents = split.max_documents;
  spec.max_bytes = split.max_bytes;
  return spec;
}

SplitSettings split_settings(const YAML::Node& config) {
  const DataOptions options = data_options(config);
  const LanguageModelDataOptions& data = language_model_data(options);
  SplitSettings s;
  s.val_fraction = data.val_fraction();
  s.max_documents = data.max_documents();
  s.max_bytes = data.max_bytes();
  return s;
}

CorpusSplit load_split(const CorpusSpec& spec, const fs::path& cache) {
  CorpusSplit split;
  for (const auto& name : spec.corpora) {
    std::vector<Document> docs = corpus_registry().get(name)(cache);
    if (spec.max_documents > 0 && docs.size() > static_cast<size_t>(spec.max_documents))
      docs.resize(static_cast<size_t>(spec.max_documents));
    if (spec.max_bytes > 0) cap_bytes(docs, spec.max_bytes);
    const size_t n = docs.size();
    for (size_t i = 0; i < n; ++i)
      (is_val_document(i, n, spec.val_fraction) ? split.val : split.train)
          .push_back(std::move(docs[i]));
  }
  check_user(!split.train.empty(), "data.corpus " + spec.key() + " leaves no training documents");
  return split;
}

bool is_val_document(size_t i, size_t n, double f) {
  const bool force_last = f > 0 && n >= 2 && std::floor(n * f) < 1;
  return std::floor((i + 1) * f) > std::floor(i * f) || (force_last && i + 1 == n);
}

uint64_t corpus_hash(const CorpusSpec& spec, const fs::path& cache) {
  Fnv64 hash;
  hash.update(spec.key());
  for (const auto& name : spec.corpora) {
    std::string dataset = name;
    std::replace(dataset.begin(), dataset.end(), '_', '-');
    hash.update(dataset).update(dataset_manifest(cache, dataset));
  }
  // 0 means "not recorded" in a shard header.
  return hash.digest() == 0 ? 1 : hash.digest();
}

std::string strip_brown_tags(const std::string& tagged) {
  // One sentence per line ("\tThe/at jury/nn ..."); keep the line structure, drop blank lines,
  // and cut every token at its last '/' (words may contain '/', tags do not).
  std::istringstream lines(tagged);
  std::string line, out;
  while (std::getline(lines, line)) {
    std::istringstream tokens(line);
    std::string token, sentence;
    while (tokens >> token) {
      const size_t slash = token.rfind('/');
      if (slash != std::string::npos && slash > 0) token.resize(slash);
      sentence += (sentence.empty() ? "" : " ") + token;
    }
    if (!sentence.empty()) out += sentence + "\n";
  }
  return out;
}

}  // namespace attnlab
