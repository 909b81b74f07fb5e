// data=files: the user's .txt/.jsonl/.bin files as a corpus: options, glob expansion, streaming
// document readers, the content hash and the shard writer (see user_files.h).
#include "data/corpora/user_files.h"

#include <glob.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/config_access.h"
#include "common/error.h"
#include "common/progress_meter.h"
#include "data/data_cache.h"
#include "data/data_options.h"
#include "data/hash.h"
#include "data/parallel_encoder.h"
#include "data/sha256.h"
#include "data/tokenizers/unicode.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

constexpr size_t kReadChunkBytes = size_t{1} << 20;

// "\n", "\t", "\r" and "\\" in a separator typed on the command line become the characters.
std::string unescape(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {
      const char next = text[i + 1];
      const char real = next == 'n' ? '\n' : next == 't' ? '\t' : next == 'r' ? '\r' : next;
      if (next == 'n' || next == 't' || next == 'r' || next == '\\') {
        out += real;
        ++i;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

// Replaces each invalid UTF-8 sequence of `text` by U+FFFD; returns how many there were.
size_t make_valid_utf8(std::string& text) {
  size_t pos = 0, bad = 0;
  while (pos < text.size()) {
    const unicode::Decoded ch = unicode::decode_utf8(text, pos);
    if (ch.code_point == unicode::kInvalid) break;
    pos += ch.length;
  }
  if (pos == text.size()) return 0;  // the common case: valid, no copy
  std::string out = text.substr(0, pos);
  while (pos < text.size()) {
    const unicode::Decoded ch = unicode::decode_utf8(text, pos);
    if (ch.code_point == unicode::kInvalid) {
      out += "\xEF\xBF\xBD";
      ++bad;
    } else {
      out.append(text, pos, ch.length);
    }
    pos += ch.length;
  }
  text = std::move(out);
  return bad;
}

std::ifstream open_binary(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  check_user(in.good(), "cannot read " + path.string());
  return in;
}

// Calls emit(text) for each document of a text file split on `separator` (or the whole file),
// reading 1 MiB at a time. Stops when emit returns false.
void read_txt(const fs::path& path, const std::optional<std::string>& separator,
              const std::function<bool(std::string&&)>& emit) {
  if (!separator) {
    emit(read_file(path));
    return;
  }
  const std::string& sep = *separator;
  std::ifstream in = open_binary(path);
  std::string buffer;
  std::vector<char> chunk(kReadChunkBytes);
  size_t scan_from = 0;  // bytes before this hold no separator start
  while (true) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const auto got = static_cast<size_t>(in.gcount());
    check_user(!in.bad(), "cannot read " + path.string());
    if (got == 0) break;
    buffer.append(chunk.data(), got);
    size_t start = 0, found;
    while ((found = buffer.find(sep, std::max(start, scan_from))) != std::string::npos) {
      if (!emit(buffer.substr(start, found - start))) return;
      start = found + sep.size();
    }
    buffer.erase(0, start);
    scan_from = buffer.size() >= sep.size() ? buffer.size() - sep.size() + 1 : 0;
  }
  emit(std::move(buffer));
}

// Calls emit(text, line) for the `text_key` string of each non-blank line of a JSON Lines file.
void read_jsonl(const fs::path& path, const std::string& text_key,
                const std::function<bool(std::string&&)>& emit) {
  std::ifstream in = open_binary(path);
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path.string() + ":" + std::to_string(number);
    nlohmann::json value;
    try {
      value = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw UserError(where + ": not valid JSON (" + e.what() + ")");
    }
    check_user(value.is_object(), where + ": expected a JSON object with a \"" + text_key +
                                      "\" string, got a " + value.type_name());
    const auto text = value.find(text_key);
    check_user(text != value.end(),
               where + ": no key \"" + text_key + "\" (the text key is set by data.text_key)");
    check_user(text->is_string(), where + ": key \"" + text_key + "\" holds a " +
                                      text->type_name() + ", expected a string");
    if (!emit(text->get<std::string>())) return;
  }
  check_user(!in.bad(), "cannot read " + path.string());
}

// Streams documents of `files` with the limits of `spec`. `warn`: report replaced UTF-8.
void read_documents(const FilesSpec& spec, const std::vector<fs::path>& files, bool warn,
                    const std::function<void(Document&&)>& visit) {
  int64_t count = 0;
  size_t bytes_left = spec.max_bytes > 0 ? static_cast<size_t>(spec.max_bytes) : SIZE_MAX;
  bool done = false;
  for (const auto& path : files) {
    if (done) break;
    const FileFormat format = file_format(spec, path);
    check_user(format != FileFormat::kBin,
               path.string() + " is a .bin token file; data=files cannot mix it with text files");
    size_t invalid = 0;
    int64_t index = 0;
    auto emit = [&](std::string&& text) {
      ++index;
      if (text.empty()) return true;  // empty documents are dropped
      invalid += make_valid_utf8(text);
      if (text.size() > bytes_left) {  // cut at a character boundary, then stop
        size_t cut = bytes_left;
        while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
        text.resize(cut);
        done = true;
      }
      bytes_left -= text.size();
      if (!text.empty())
        visit({path.string() + "#" + std::to_string(index), std::move(text)}), ++count;
      if (bytes_left == 0 || (spec.max_documents > 0 && count >= spec.max_documents)) done = true;
      return !done;
    };
    if (format == FileFormat::kJsonl) {
      read_jsonl(path, spec.text_key, emit);
    } else {
      read_txt(path, spec.separator, emit);
    }
    if (warn && invalid > 0)
      std::cerr << "warning: " << path.string() << ": " << invalid
                << " invalid UTF-8 sequence(s) replaced by U+FFFD\n";
  }
}

// Reads a .bin file in chunks of ids, checking size and range; visit(ids, count) per chunk.
void read_bin(const FilesSpec& spec, const fs::path& path,
              const std::function<void(const int32_t*, size_t)>& visit) {
  std::ifstream in = open_binary(path);
  std::vector<char> bytes(kReadChunkBytes);
  std::vector<int32_t> ids;
  uint64_t offset = 0;
  while (true) {
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    const auto got = static_cast<size_t>(in.gcount());
    check_user(!in.bad(), "cannot read " + path.string());
    if (got == 0) break;
    ids.resize(got / 2);
    for (size_t i = 0; i < ids.size(); ++i) {
      const auto lo = static_cast<unsigned char>(bytes[2 * i]);
      const auto hi = static_cast<unsigned char>(bytes[2 * i + 1]);
      ids[i] = static_cast<int32_t>(lo | (hi << 8));
      if (ids[i] >= spec.vocab_size)
        throw UserError(path.string() + ": token id " + std::to_string(ids[i]) +
                        " at byte offset " + std::to_string(offset + 2 * i) +
                        " is not below data.vocab_size " + std::to_string(spec.vocab_size));
    }
    visit(ids.data(), ids.size());
    offset += got;
  }
}

// Text bytes of `ids` without special tokens (for bits per byte), and how many EOS they hold.
void count_text(const Tokenizer& tokenizer, const int32_t* ids, size_t count, ShardInfo& info) {
  const SpecialTokens& special = tokenizer.special_tokens();
  std::vector<int32_t> text;
  text.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const int32_t id = ids[i];
    if (id == special.eos) ++info.document_count;
    if (id == special.bos || id == special.eos || id == special.pad || id == special.mask) continue;
    text.push_back(id);
  }
  info.utf8_bytes += tokenizer.decode(text).size();
}

// How many of `total` bytes stay in training when the last `val_fraction` is held out.
size_t train_bytes_of(size_t total, double val_fraction) {
  return total - static_cast<size_t>(std::floor(static_cast<double>(total) * val_fraction));
}

// `at`, moved back to the start of the UTF-8 character it falls in.
size_t char_boundary(const std::string& text, size_t at) {
  at = std::min(at, text.size());
  while (at > 0 && at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) --at;
  return at;
}

FilesShards write_bin_shards(const FilesSpec& spec, const Tokenizer& tokenizer,
                             TokenShardWriter& train, TokenShardWriter& val) {
  check_user(
      tokenizer.vocab_size() >= spec.vocab_size,
      "config key 'data.vocab_size' is " + std::to_string(spec.vocab_size) + " but tokenizer '" +
          tokenizer.fingerprint() + "' has only " + std::to_string(tokenizer.vocab_size()) +
          " ids; choose the tokenizer the .bin files were written with (e.g. tokenizer=gpt2)");
  uint64_t total = 0;
  for (const auto& path : spec.train_files) total += fs::file_size(path) / 2;
  const uint64_t held_out =
      spec.val_files.empty()
          ? static_cast<uint64_t>(std::floor(static_cast<double>(total) * spec.val_fraction))
          : 0;
  uint64_t seen = 0;
  for (const auto& path : spec.train_files) {
    read_bin(spec, path, [&](const int32_t* ids, size_t count) {
      // The first total - held_out ids go to train, the rest to validation.
      const uint64_t to_train =
          seen >= total - held_out ? 0 : std::min<uint64_t>(count, total - held_out - seen);
      train.append(ids, to_train);
      count_text(tokenizer, ids, to_train, train.info());
      val.append(ids + to_train, count - to_train);
      count_text(tokenizer, ids + to_train, count - to_train, val.info());
      seen += count;
    });
  }
  for (const auto& path : spec.val_files) {
    read_bin(spec, path, [&](const int32_t* ids, size_t count) {
      val.append(ids, count);
      count_text(tokenizer, ids, count, val.info());
    });
  }
  check_user(train.token_count() > 0, "config key 'data.train': the .bin files hold no tokens");
  FilesShards shards;
  shards.split = spec.val_files.empty() ? "bin" : "files";
  shards.val = val.finish();
  shards.train = train.finish();
  return shards;
}

}  // namespace

// A string or a list of strings at `key`; null or absent: empty.
std::vector<std::string> file_patterns_at(const YAML::Node& config, const std::string& key) {
  const YAML::Node node = cfg::find(config, key);
  if (!node.IsDefined() || node.IsNull()) return {};
  if (node.IsSequence()) return cfg::get<std::vector<std::string>>(config, key);
  const std::string one = cfg::get<std::string>(config, key);
  return one.empty() ? std::vector<std::string>{} : std::vector<std::string>{one};
}

// The regular files matching each pattern (glob(3): * ? [..] ~, sorted by name), absolute, in
// pattern order without repeats. A pattern matching no file is a UserError naming `key`.
std::vector<fs::path> expand_file_patterns(const std::vector<std::string>& patterns,
                                           const std::string& key) {
  std::vector<fs::path> files;
  std::set<fs::path> seen;
  for (const auto& pattern : patterns) {
    glob_t matches{};
    const int rc = ::glob(pattern.c_str(), GLOB_TILDE, nullptr, &matches);
    size_t added = 0;
    if (rc == 0) {
      for (size_t i = 0; i < matches.gl_pathc; ++i) {
        const fs::path path = fs::absolute(matches.gl_pathv[i]).lexically_normal();
        std::error_code ec;
        if (!fs::is_regular_file(path, ec)) continue;  // folders, sockets, broken links
        ++added;
        if (seen.insert(path).second) files.push_back(path);
      }
    }
    ::globfree(&matches);
    check_user(added > 0, "config key '" + key + "': no file matches '" + pattern + "'");
  }
  return files;
}

FileFormat file_format(const FilesSpec& spec, const fs::path& file) {
  if (spec.format == "txt") return FileFormat::kTxt;
  if (spec.format == "jsonl") return FileFormat::kJsonl;
  if (spec.format == "bin") return FileFormat::kBin;
  const std::string ext = file.extension().string();
  if (ext == ".jsonl") return FileFormat::kJsonl;
  if (ext == ".bin") return FileFormat::kBin;
  return FileFormat::kTxt;
}

std::string FilesSpec::key() const {
  std::ostringstream out;
  out << "format=" << format << ",sep=" << (separator ? nlohmann::json(*separator).dump() : "null")
      << ",text_key=" << nlohmann::json(text_key).dump() << ",vocab=" << vocab_size
      << ",val=" << (val_files.empty() ? std::to_string(val_fraction) : "files")
      << ",docs=" << max_documents << ",bytes=" << max_bytes;
  return out.str();
}

bool uses_user_files(const YAML::Node& config) {
  // data=labelled_files also has data.train, but names a labelled dataset (classification).
  return cfg::find(config, "data.train").IsDefined() &&
         !cfg::find(config, "data.dataset").IsDefined();
}

FilesSpec files_spec(const YAML::Node& config) {
  const DataOptions data = data_options(config);
  const FilesDataOptions* files = std::get_if<FilesDataOptions>(&data);
  FilesSpec spec;
  spec.train_patterns = file_patterns_at(config, "data.train");
  check_user(files != nullptr && !spec.train_patterns.empty(),
             "config key 'data.train': data=files needs the training files, a path, a glob or a "
             "list of them (e.g. data.train='my_texts/*.txt')");
  spec.val_patterns = file_patterns_at(config, "data.val");
  spec.train_files = expand_file_patterns(spec.train_patterns, "data.train");
  spec.val_files = expand_file_patterns(spec.val_patterns, "data.val");
  const std::set<fs::path> train_set(spec.train_files.begin(), spec.train_files.end());
  for (const auto& path : spec.val_files)
    check_user(!train_set.count(path),
               "config key 'data.val': " + path.string() + " is also a training file (data.train)");

  spec.format = files->format();
  // .bin files hold token ids and text files documents: a set is all of one kind.
  const fs::path& first = spec.train_files.front();
  spec.bin = file_format(spec, first) == FileFormat::kBin;
  for (const auto* files : {&spec.train_files, &spec.val_files}) {
    for (const auto& path : *files) {
      check_user((file_format(spec, path) == FileFormat::kBin) == spec.bin,
                 "data=files cannot mix .bin token files and text files: " + first.string() +
                     " and " + path.string() + " (set data.format to read them one way)");
    }
  }

  if (files->separator()) {
    spec.separator = unescape(*files->separator());
    check_user(!spec.separator->empty(),
               "config key 'data.separator': expected a non-empty string or null (whole file)");
  }
  spec.text_key = files->text_key();
  check_user(!spec.text_key.empty(), "config key 'data.text_key': expected a non-empty string");
  spec.vocab_size = files->vocab_size().value_or(0);  // null: none (text files)
  if (spec.bin) {
    check_user(spec.vocab_size > 0,
               "config key 'data.vocab_size': .bin token files need it (ids run from 0 to "
               "vocab_size - 1, e.g. 50257 for GPT-2's); files: " +
                   first.string());
    check_user(spec.vocab_size <= 65536,
               "config key 'data.vocab_size': .bin files hold uint16 ids, so at most 65536, got " +
                   std::to_string(spec.vocab_size));
    for (const auto* files : {&spec.train_files, &spec.val_files}) {
      for (const auto& path : *files) {
        const uintmax_t bytes = fs::file_size(path);
        check_user(bytes % 2 == 0, path.string() + ": " + std::to_string(bytes) +
                                       " bytes, an odd size; a .bin token file holds uint16 ids "
                                       "(2 bytes each)");
      }
    }
  } else {
    spec.vocab_size = 0;  // unused by text files: keep it out of their cache key
  }

  const SplitSettings split = split_settings(config);
  spec.val_fraction = split.val_fraction;
  spec.max_documents = split.max_documents;
  spec.max_bytes = split.max_bytes;
  check_user(!spec.bin || (spec.max_documents == 0 && spec.max_bytes == 0),
             "config keys 'data.max_documents' and 'data.max_bytes' limit text files; .bin token "
             "files are used whole (set them to 0)");
  return spec;
}

void for_each_document(const FilesSpec& spec, const std::vector<fs::path>& files,
                       const std::function<void(Document&&)>& visit) {
  read_documents(spec, files, /*warn=*/true, visit);
}

bool splits_by_tokens(size_t documents, double val_fraction) {
  return val_fraction > 0 && std::floor(static_cast<double>(documents) * val_fraction) < 1;
}

CorpusSplit load_files_split(const FilesSpec& spec) {
  check_user(!spec.bin, "load_files_split: .bin files hold token ids, not documents");
  CorpusSplit split;
  if (spec.val_files.empty()) {
    std::vector<Document> docs;
    for_each_document(spec, spec.train_files, [&](Document&& doc) { docs.push_back(doc); });
    const size_t n = docs.size();
    if (splits_by_tokens(n, spec.val_fraction)) {
      // Too few documents to hold out whole ones: the last val_fraction of the text (by bytes
      // here, without a tokenizer; the shards cut by tokens) is validation.
      size_t total = 0;
      for (const auto& doc : docs) total += doc.text.size();
      size_t keep = train_bytes_of(total, spec.val_fraction);
      for (auto& doc : docs) {
        if (keep >= doc.text.size()) {
          keep -= doc.text.size();
          split.train.push_back(std::move(doc));
          continue;
        }
        const size_t cut = char_boundary(doc.text, keep);
        keep = 0;
        if (cut > 0) split.train.push_back({doc.name, doc.text.substr(0, cut)});
        split.val.push_back({doc.name, doc.text.substr(cut)});
      }
    } else {
      for (size_t i = 0; i < n; ++i)
        (is_val_document(i, n, spec.val_fraction) ? split.val : split.train)
            .push_back(std::move(docs[i]));
    }
  } else {
    for_each_document(spec, spec.train_files,
                      [&](Document&& doc) { split.train.push_back(std::move(doc)); });
    for_each_document(spec, spec.val_files,
                      [&](Document&& doc) { split.val.push_back(std::move(doc)); });
  }
  check_user(!split.train.empty(),
             "config key 'data.train': the files leave no training documents");
  return split;
}

std::vector<std::string> files_training_texts(const FilesSpec& spec, int64_t max_bytes) {
  check_user(!spec.bin,
             "data=files with .bin token files has no text to train a tokenizer on; use "
             "tokenizer=gpt2 or tokenizer=byte, or tokenizer.model_path for a bpe model");
  // Streams the training documents and keeps the first ones that fit in max_bytes (at least
  // one), so a corpus of any size trains the tokenizer in bounded memory.
  size_t n = 0, total_bytes = 0;
  if (spec.val_files.empty())
    read_documents(spec, spec.train_files, /*warn=*/false, [&](Document&& doc) {
      ++n;
      total_bytes += doc.text.size();
    });
  // With too few documents the validation text is the tail of the text: leave it out.
  const bool by_tokens = spec.val_files.empty() && splits_by_tokens(n, spec.val_fraction);
  size_t train_bytes_left = by_tokens ? train_bytes_of(total_bytes, spec.val_fraction) : SIZE_MAX;
  std::vector<std::string> texts;
  size_t i = 0;
  int64_t kept_bytes = 0;
  bool full = false;
  for_each_document(spec, spec.train_files, [&](Document&& doc) {
    if (full) return;
    if (by_tokens) {
      if (train_bytes_left == 0) return;
      if (doc.text.size() > train_bytes_left) {
        doc.text.resize(char_boundary(doc.text, train_bytes_left));
        train_bytes_left = 0;  // the held-out tail starts inside this document
      } else {
        train_bytes_left -= doc.text.size();
      }
      if (doc.text.empty()) return;
    } else if (spec.val_files.empty() && is_val_document(i++, n, spec.val_fraction)) {
      return;
    }
    const auto size = static_cast<int64_t>(doc.text.size());
    if (max_bytes > 0 && !texts.empty() && kept_bytes + size > max_bytes) {
      full = true;
      return;
    }
    kept_bytes += size;
    texts.push_back(std::move(doc.text));
  });
  check_user(!texts.empty(), "config key 'data.train': the files leave no training documents");
  return texts;
}

uint64_t files_hash(const FilesSpec& spec) {
  Fnv64 hash;
  // v2: too few documents hold out the last val_fraction of the tokens (v1 held out a whole
  // document, or none of one file); a new version keeps v1's shards from being reused.
  hash.update(std::string("files-v2")).update(spec.key());
  for (const auto& [role, files] :
       {std::pair{"train", &spec.train_files}, std::pair{"val", &spec.val_files}}) {
    for (const auto& path : *files)
      hash.update(std::string(role)).update(path.string()).update(sha256_file(path));
  }
  return hash.digest() == 0 ? 1 : hash.digest();  // 0 means "not recorded" in a shard header
}

namespace {

// Too few documents to hold out whole ones (see splits_by_tokens): every document is encoded into
// one temporary shard (<dir>/all.bin, removed afterwards), whose first tokens become train and
// whose last floor(tokens * val_fraction) become validation, as for .bin files.
FilesShards write_token_split(const FilesSpec& spec, const Tokenizer& tokenizer,
                              const fs::path& train_path, TokenShardWriter& train,
                              TokenShardWriter& val, const EncodeOptions& options,
                              double total_bytes) {
  const fs::path all_path = train_path.parent_path() / "all.bin";
  struct RemoveOnExit {
    fs::path path;
    ~RemoveOnExit() {
      std::error_code ignored;
      fs::remove(path, ignored);
    }
  } remove_all{all_path};
  {
    ShardInfo all_info = train.info();
    all_info.role = ShardRole::kUnspecified;
    TokenShardWriter all(all_path, all_info);
    ProgressMeter meter("prepare", total_bytes, "MB", 1e6, options.progress);
    ParallelEncoder encoder(tokenizer, options.workers,
                            [&](int, const Document& doc, std::vector<int32_t>&& ids) {
                              ids.push_back(tokenizer.eos());
                              all.append(ids);
                              meter.add(static_cast<double>(doc.text.size()));
                            });
    for_each_document(spec, spec.train_files,
                      [&](Document&& doc) { encoder.push(0, std::move(doc)); });
    encoder.finish();
    meter.finish();
    all.finish();
  }
  const auto all = TokenShard::open(all_path);
  const int64_t total = all->size();
  const auto held_out =
      static_cast<int64_t>(std::floor(static_cast<double>(total) * spec.val_fraction));
  const int64_t cut = total - held_out;
  constexpr int64_t kChunk = int64_t{1} << 20;
  std::vector<int64_t> buffer;
  std::vector<int32_t> ids;
  for (int64_t start = 0; start < total; start += kChunk) {
    const int64_t count = std::min(kChunk, total - start);
    buffer.resize(static_cast<size_t>(count));
    all->copy(start, count, buffer.data());
    ids.assign(buffer.begin(), buffer.end());
    const auto to_train = static_cast<size_t>(std::clamp<int64_t>(cut - start, 0, count));
    train.append(ids.data(), to_train);
    count_text(tokenizer, ids.data(), to_train, train.info());
    val.append(ids.data() + to_train, ids.size() - to_train);
    count_text(tokenizer, ids.data() + to_train, ids.size() - to_train, val.info());
  }
  // The document the cut falls in has its head in train and its tail in validation.
  if (cut > 0 && all->token(cut - 1) != tokenizer.eos()) ++train.info().document_count;
  check_user(train.token_count() > 0,
             "config key 'data.train': the files leave no training documents (all empty?)");
  FilesShards shards;
  shards.split = "tokens";
  shards.val = val.finish();
  shards.train = train.finish();
  return shards;
}

}  // namespace

FilesShards write_files_shards(const FilesSpec& spec, const Tokenizer& tokenizer,
                               const fs::path& train_path, const fs::path& val_path,
                               const ShardInfo& base, const EncodeOptions& options) {
  ShardInfo train_info = base, val_info = base;
  train_info.role = ShardRole::kTrain;
  val_info.role = ShardRole::kVal;
  TokenShardWriter train(train_path, train_info);
  TokenShardWriter val(val_path, val_info);
  if (spec.bin) return write_bin_shards(spec, tokenizer, train, val);

  // Progress in text bytes; the total is the files' size (exact for .txt, an upper bound for
  // .jsonl and under data.max_bytes).
  double total_bytes = 0;
  for (const auto* files : {&spec.train_files, &spec.val_files})
    for (const auto& path : *files) total_bytes += static_cast<double>(fs::file_size(path));
  // Without data.val, count first (no warnings), then route document i by the rule of
  // load_split, or hold out tokens when the documents are too few for it.
  size_t n = 0;
  if (spec.val_files.empty()) {
    read_documents(spec, spec.train_files, /*warn=*/false, [&n](Document&&) { ++n; });
    if (splits_by_tokens(n, spec.val_fraction))
      return write_token_split(spec, tokenizer, train_path, train, val, options, total_bytes);
  }
  ProgressMeter meter("prepare", total_bytes, "MB", 1e6, options.progress);
  enum Tag { kTrainTag = 0, kValTag = 1 };
  ParallelEncoder encoder(tokenizer, options.workers,
                          [&](int tag, const Document& doc, std::vector<int32_t>&& ids) {
                            TokenShardWriter& writer = tag == kValTag ? val : train;
                            ids.push_back(tokenizer.eos());
                            writer.append(ids);
                            writer.info().utf8_bytes += doc.text.size();
                            ++writer.info().document_count;
                            meter.add(static_cast<double>(doc.text.size()));
                          });
  FilesShards shards;
  if (spec.val_files.empty()) {
    shards.split = "documents";
    size_t i = 0;
    for_each_document(spec, spec.train_files, [&](Document&& doc) {
      encoder.push(is_val_document(i++, n, spec.val_fraction) ? kValTag : kTrainTag,
                   std::move(doc));
    });
  } else {
    shards.split = "files";
    for_each_document(spec, spec.train_files,
                      [&](Document&& doc) { encoder.push(kTrainTag, std::move(doc)); });
    for_each_document(spec, spec.val_files,
                      [&](Document&& doc) { encoder.push(kValTag, std::move(doc)); });
  }
  encoder.finish();
  meter.finish();
  check_user(train.info().document_count > 0,
             "config key 'data.train': the files leave no training documents (all empty?)");
  shards.val = val.finish();
  shards.train = train.finish();
  return shards;
}

}  // namespace attnlab
