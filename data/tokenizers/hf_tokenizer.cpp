// Hugging Face tokenizer.json BPE tokenizers (see hf_tokenizer.h). The pipeline follows
// `tokenizers` (Rust) step by step: normalizer on the whole text, pre-tokenizer steps on the list
// of pieces, the BPE model on each piece (tokenizers' merge_word + Word::merge_all: a heap of
// (rank, position), so ties and long words behave the same), and the decoder chain on the token
// strings. Vocabulary entries stay in their tokenizer.json form (byte-level models: the mapped
// code points of bytes_to_unicode; SentencePiece ones: ▁ for spaces).
#include "data/tokenizers/hf_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <queue>
#include <string_view>
#include <unordered_map>

#include "common/error.h"
#include "data/data_cache.h"
#include "data/hash.h"
#include "data/tokenizers/nfc.h"
#include "data/tokenizers/unicode.h"
#include "data/tokenizers/word_cache.h"

namespace attnlab {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// GPT-2's pre-tokenisation pattern, as `tokenizers`' ByteLevel pre-tokenizer spells it.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Words longer than this (bytes) are not memoised: a model without a pre-tokenizer (Llama-2)
// sees whole documents as one word.
constexpr size_t kMaxCachedWord = 256;

size_t utf8_length(std::string_view text, size_t pos) {
  // decode_utf8 wants a std::string; only empty regex matches need this, so a copy is fine.
  const size_t end = std::min(text.size(), pos + 4);
  return unicode::decode_utf8(std::string(text.substr(pos, end - pos)), 0).length;
}

// ---------------------------------------------------------------------------------------------
// PCRE2 with UTF + Unicode properties (\p{L}, \s as Unicode White_Space) and JIT. Invalid UTF-8
// in the subject is allowed; no pattern item matches it.

struct MatchScratch {  // per thread: match data, and a JIT stack larger than the 32 KB default
  pcre2_match_data* data;
  pcre2_match_context* context;
  pcre2_jit_stack* stack;
  MatchScratch()
      : data(pcre2_match_data_create(1, nullptr)),
        context(pcre2_match_context_create(nullptr)),
        stack(pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr)) {
    if (context && stack) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchScratch() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
  }
};

MatchScratch& match_scratch() {
  thread_local MatchScratch scratch;
  return scratch;
}

class Regex {
 public:
  Regex(const std::string& pattern, const std::string& where) : pattern_(pattern) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                      PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
    if (!code_) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      throw UserError(where + ": regex '" + pattern +
                      "' is not supported (PCRE2: " + reinterpret_cast<const char*>(message) +
                      " at offset " + std::to_string(offset) + ")");
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter on failure
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Calls on_match(start, end) for every non-empty match, leftmost first and not overlapping
  // (Oniguruma's find_iter; an empty match moves on by one character).
  template <class OnMatch>
  void for_each_match(std::string_view text, OnMatch on_match) const {
    MatchScratch& scratch = match_scratch();
    size_t pos = 0;
    while (pos < text.size()) {
      const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos,
                                 0, scratch.data, scratch.context);
      if (rc == PCRE2_ERROR_NOMATCH) return;
      if (rc < 0) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(rc, message, sizeof(message));
        throw UserError("hf tokenizer: regex '" + pattern_ + "' failed on a text of " +
                        std::to_string(text.size()) +
                        " bytes (PCRE2: " + reinterpret_cast<const char*>(message) + ")");
      }
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.data);
      const size_t start = ovector[0], end = ovector[1];
      if (end > start) {
        on_match(start, end);
        pos = end;
      } else {
        if (start >= text.size()) return;
        pos = start + utf8_length(text, start);
      }
    }
  }

 private:
  std::string pattern_;
  pcre2_code* code_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Byte-level alphabet (GPT-2's bytes_to_unicode).

struct ByteLevelTables {
  std::string byte_text[256];                  // byte -> UTF-8 of its printable code point
  std::unordered_map<uint32_t, uint8_t> byte;  // code point -> byte
};

const ByteLevelTables& byte_level_tables() {
  static const ByteLevelTables tables = [] {
    ByteLevelTables t;
    uint32_t next_unprintable = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t cp = printable ? b : next_unprintable++;
      t.byte[cp] = static_cast<uint8_t>(b);
      std::string& s = t.byte_text[b];
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else {  // < 0x800 here
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    }
    return t;
  }();
  return tables;
}

std::string byte_level_encode(std::string_view raw) {
  const ByteLevelTables& t = byte_level_tables();
  std::string out;
  out.reserve(raw.size() * 2);
  for (char c : raw) out += t.byte_text[static_cast<uint8_t>(c)];
  return out;
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = text.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(text, pos, hit - pos);
    out += to;
  }
  if (pos == 0) return;
  out.append(text, pos, std::string::npos);
  text.swap(out);
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json reading helpers: every complaint names the file and the JSON path.

struct JsonReader {
  std::string file;

  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw UserError(file + ": " + where + ": " + what);
  }
  const json* find(const json& object, const std::string& key) const {
    if (!object.is_object()) return nullptr;
    auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
  }
  const json& at(const json& object, const std::string& key, const std::string& where) const {
    if (!object.is_object()) fail(where, "expected a JSON object");
    const json* value = find(object, key);
    if (!value) fail(where, "missing key '" + key + "'");
    return *value;
  }
  std::string string(const json& object, const std::string& key, const std::string& where) const {
    const json& value = at(object, key, where);
    if (!value.is_string()) fail(where + "." + key, "expected a string");
    return value.get<std::string>();
  }
  bool flag(const json& object, const std::string& key, const std::string& where,
            bool fallback) const {
    const json* value = find(object, key);
    if (!value) return fallback;
    if (!value->is_boolean()) fail(where + "." + key, "expected true or false");
    return value->get<bool>();
  }
  int64_t integer(const json& object, const std::string& key, const std::string& where,
                  int64_t fallback) const {
    const json* value = find(object, key);
    if (!value) return fallback;
    if (!value->is_number_integer() || value->get<int64_t>() < 0)
      fail(where + "." + key, "expected an integer >= 0");
    return value->get<int64_t>();
  }
  std::string type(const json& object, const std::string& where) const {
    return string(object, "type", where);
  }
};

// A normalizer/pre-tokenizer/decoder pattern: {"String": "..."} or {"Regex": "..."}.
struct Pattern {
  std::string literal;                 // String form
  std::shared_ptr<const Regex> regex;  // Regex form

  template <class OnMatch>
  void for_each_match(std::string_view text, OnMatch on_match) const {
    if (regex) return regex->for_each_match(text, on_match);
    if (literal.empty()) return;
    for (size_t hit = text.find(literal); hit != std::string_view::npos;
         hit = text.find(literal, hit + literal.size()))
      on_match(hit, hit + literal.size());
  }
};

Pattern read_pattern(const JsonReader& r, const json& node, const std::string& where,
                     bool allow_regex) {
  const json& pattern = r.at(node, "pattern", where);
  Pattern out;
  if (const json* s = r.find(pattern, "String")) {
    if (!s->is_string() || s->get<std::string>().empty())
      r.fail(where + ".pattern.String", "expected a non-empty string");
    out.literal = s->get<std::string>();
  } else if (const json* re = r.find(pattern, "Regex")) {
    if (!re->is_string()) r.fail(where + ".pattern.Regex", "expected a string");
    if (!allow_regex) r.fail(where + ".pattern", "only a String pattern is supported here");
    out.regex = std::make_shared<Regex>(re->get<std::string>(), r.file + ": " + where);
  } else {
    r.fail(where + ".pattern", "expected {\"String\": ...} or {\"Regex\": ...}");
  }
  return out;
}

enum class Prepend { kFirst, kAlways, kNever };

Prepend read_prepend_scheme(const JsonReader& r, const json& node, const std::string& where) {
  if (const json* scheme = r.find(node, "prepend_scheme")) {
    const std::string s = scheme->is_string() ? scheme->get<std::string>() : "";
    if (s == "first") return Prepend::kFirst;
    if (s == "always") return Prepend::kAlways;
    if (s == "never") return Prepend::kNever;
    r.fail(where + ".prepend_scheme", "expected \"first\", \"always\" or \"never\"");
  }
  // Files from before prepend_scheme: add_prefix_space true/false.
  return r.flag(node, "add_prefix_space", where, true) ? Prepend::kAlways : Prepend::kNever;
}

std::string read_replacement(const JsonReader& r, const json& node, const std::string& where) {
  const std::string replacement = r.string(node, "replacement", where);
  const bool one_char = !replacement.empty() &&
                        unicode::decode_utf8(replacement, 0).length == replacement.size() &&
                        unicode::decode_utf8(replacement, 0).code_point != unicode::kInvalid;
  if (!one_char) r.fail(where + ".replacement", "expected one character");
  return replacement;
}

// ---------------------------------------------------------------------------------------------
// Pipeline steps.

enum class NormKind { kPrepend, kReplace, kNfc };
struct NormStep {
  NormKind kind;
  std::string text;  // Prepend: the prefix; Replace: the content
  Pattern pattern;   // Replace
};

enum class PreKind { kByteLevel, kSplit, kMetaspace };
struct PreStep {
  PreKind kind;
  bool add_prefix_space = false;  // ByteLevel
  bool use_regex = true;          // ByteLevel
  Pattern pattern;                // Split; ByteLevel's GPT-2 pattern
  std::string replacement;        // Metaspace
  Prepend prepend = Prepend::kAlways;
  bool split = true;
};

enum class DecKind { kByteLevel, kMetaspace, kReplace, kByteFallback, kFuse, kStrip };
struct DecStep {
  DecKind kind;
  std::string pattern;  // Replace: the String pattern; Metaspace, Strip: the character
  std::string content;  // Replace
  Prepend prepend = Prepend::kAlways;
  size_t start = 0, stop = 0;  // Strip
};

// A piece of text during pre-tokenisation; at_origin: it starts at offset 0 of the input
// (Metaspace's prepend_scheme "first").
struct Piece {
  std::string text;
  bool at_origin;
};

}  // namespace

struct HfTokenizer::Impl {
  std::string file;
  uint64_t serial = next_word_cache_serial();

  // Model.
  std::unordered_map<std::string, int32_t> vocab;  // the model's vocabulary (no added tokens)
  struct MergeTarget {
    int32_t rank;
    int32_t id;
  };
  std::unordered_map<uint64_t, MergeTarget> merges;  // (left id, right id) -> rank, merged id
  int32_t unk_id = -1;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  int32_t byte_ids[256];  // <0xXX> ids (-1: absent)

  std::vector<NormStep> normalizers;
  std::vector<PreStep> pre_tokenizers;
  bool has_decoder = false;
  std::vector<DecStep> decoders;

  std::vector<std::string> id_to_token;  // "" for unused ids
  std::vector<bool> skip_on_decode;      // special added tokens, unused ids
  int64_t vocab_size = 0;
  std::string fingerprint;

  // --- loading ---
  void read_model(const JsonReader& r, const json& model);
  void read_normalizer(const JsonReader& r, const json& node, const std::string& where);
  void read_pre_tokenizer(const JsonReader& r, const json& node, const std::string& where);
  void read_decoder(const JsonReader& r, const json& node, const std::string& where);

  // --- encoding ---
  void normalize(std::string& text) const;
  std::vector<Piece> pre_tokenize(std::string text) const;
  void tokenize_word(const std::string& word, std::vector<int32_t>& out) const;
  std::vector<int32_t> bpe(const std::string& word) const;
};

void HfTokenizer::Impl::read_model(const JsonReader& r, const json& model) {
  const std::string where = "model";
  const json* type = r.find(model, "type");
  if (type) {
    const std::string name = type->is_string() ? type->get<std::string>() : "?";
    if (name != "BPE")
      r.fail("model.type", "model type '" + name +
                               "' is not supported (expected BPE; WordPiece, Unigram and "
                               "WordLevel models are not)");
  } else if (!r.find(model, "merges")) {
    r.fail("model", "expected a BPE model (type \"BPE\" with vocab and merges)");
  }
  if (const json* dropout = r.find(model, "dropout")) {
    if (!dropout->is_number() || dropout->get<double>() != 0.0)
      r.fail("model.dropout", "BPE dropout is not supported (expected null)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (const json* value = r.find(model, key)) {
      if (!value->is_string() || !value->get<std::string>().empty())
        r.fail(std::string("model.") + key, "not supported (expected null)");
    }
  }
  fuse_unk = r.flag(model, "fuse_unk", where, false);
  byte_fallback = r.flag(model, "byte_fallback", where, false);
  ignore_merges = r.flag(model, "ignore_merges", where, false);

  const json& vocab_node = r.at(model, "vocab", where);
  if (!vocab_node.is_object()) r.fail("model.vocab", "expected an object {token: id}");
  vocab.reserve(vocab_node.size());
  for (const auto& [token, id] : vocab_node.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (1 << 24))
      r.fail("model.vocab", "entry '" + token + "': expected an id in [0, 2^24)");
    vocab[token] = id.get<int32_t>();
  }
  if (const json* unk = r.find(model, "unk_token")) {
    if (!unk->is_string()) r.fail("model.unk_token", "expected a string or null");
    auto it = vocab.find(unk->get<std::string>());
    if (it == vocab.end())
      r.fail("model.unk_token", "'" + unk->get<std::string>() + "' is not in model.vocab");
    unk_id = it->second;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    auto it = vocab.find(name);
    byte_ids[b] = it == vocab.end() ? -1 : it->second;
  }

  const json& merges_node = r.at(model, "merges", where);
  if (!merges_node.is_array()) r.fail("model.merges", "expected an array");
  merges.reserve(merges_node.size());
  int32_t rank = 0;
  for (const json& merge : merges_node) {
    std::string left, right;
    if (merge.is_string()) {
      const std::string line = merge.get<std::string>();
      const size_t space = line.find(' ');
      if (space == std::string::npos)
        r.fail("model.merges", "merge '" + line + "': expected \"left right\"");
      left = line.substr(0, space);
      right = line.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      r.fail("model.merges", "merge " + std::to_string(rank) +
                                 ": expected \"left right\" or [\"left\", \"right\"]");
    }
    auto l = vocab.find(left), rt = vocab.find(right), merged = vocab.find(left + right);
    for (auto [it, name] : {std::pair{l, &left}, std::pair{rt, &right}}) {
      if (it == vocab.end())
        r.fail("model.merges", "merge '" + left + " " + right + "' names token '" + *name +
                                   "', which is not in model.vocab");
    }
    if (merged == vocab.end())
      r.fail("model.merges", "merge '" + left + " " + right + "': the merged token '" + left +
                                 right + "' is not in model.vocab");
    merges[pair_key(l->second, rt->second)] = {rank++, merged->second};  // a repeat: last wins
  }
}

void HfTokenizer::Impl::read_normalizer(const JsonReader& r, const json& node,
                                        const std::string& where) {
  const std::string type = r.type(node, where);
  if (type == "Sequence") {
    const json& list = r.at(node, "normalizers", where);
    if (!list.is_array()) r.fail(where + ".normalizers", "expected an array");
    for (size_t i = 0; i < list.size(); ++i)
      read_normalizer(r, list[i], where + ".normalizers[" + std::to_string(i) + "]");
  } else if (type == "Prepend") {
    normalizers.push_back({NormKind::kPrepend, r.string(node, "prepend", where), {}});
  } else if (type == "Replace") {
    normalizers.push_back(
        {NormKind::kReplace, r.string(node, "content", where), read_pattern(r, node, where, true)});
  } else if (type == "NFC") {
    normalizers.push_back({NormKind::kNfc, "", {}});
  } else {
    r.fail(where + ".type", "normalizer '" + type +
                                "' is not supported (supported: NFC, Prepend, Replace, Sequence)");
  }
}

void HfTokenizer::Impl::read_pre_tokenizer(const JsonReader& r, const json& node,
                                           const std::string& where) {
  const std::string type = r.type(node, where);
  PreStep step;
  if (type == "Sequence") {
    const json& list = r.at(node, "pretokenizers", where);
    if (!list.is_array()) r.fail(where + ".pretokenizers", "expected an array");
    for (size_t i = 0; i < list.size(); ++i)
      read_pre_tokenizer(r, list[i], where + ".pretokenizers[" + std::to_string(i) + "]");
    return;
  } else if (type == "ByteLevel") {
    step.kind = PreKind::kByteLevel;
    step.add_prefix_space = r.flag(node, "add_prefix_space", where, true);
    step.use_regex = r.flag(node, "use_regex", where, true);
    if (step.use_regex) step.pattern.regex = std::make_shared<Regex>(kGpt2Pattern, r.file);
  } else if (type == "Split") {
    step.kind = PreKind::kSplit;
    step.pattern = read_pattern(r, node, where, true);
    const std::string behavior = r.string(node, "behavior", where);
    if (behavior != "Isolated")
      r.fail(where + ".behavior", "'" + behavior + "' is not supported (expected Isolated)");
    if (r.flag(node, "invert", where, false))
      r.fail(where + ".invert", "invert true is not supported (expected false)");
  } else if (type == "Metaspace") {
    step.kind = PreKind::kMetaspace;
    step.replacement = read_replacement(r, node, where);
    step.prepend = read_prepend_scheme(r, node, where);
    step.split = r.flag(node, "split", where, true);
  } else {
    r.fail(where + ".type", "pre-tokenizer '" + type +
                                "' is not supported (supported: ByteLevel, Split, Metaspace, "
                                "Sequence)");
  }
  pre_tokenizers.push_back(std::move(step));
}

void HfTokenizer::Impl::read_decoder(const JsonReader& r, const json& node,
                                     const std::string& where) {
  const std::string type = r.type(node, where);
  DecStep step;
  if (type == "Sequence") {
    const json& list = r.at(node, "decoders", where);
    if (!list.is_array()) r.fail(where + ".decoders", "expected an array");
    for (size_t i = 0; i < list.size(); ++i)
      read_decoder(r, list[i], where + ".decoders[" + std::to_string(i) + "]");
    return;
  } else if (type == "ByteLevel") {
    step.kind = DecKind::kByteLevel;
  } else if (type == "Metaspace") {
    step.kind = DecKind::kMetaspace;
    step.pattern = read_replacement(r, node, where);
    step.prepend = read_prepend_scheme(r, node, where);
  } else if (type == "Replace") {
    step.kind = DecKind::kReplace;
    step.pattern = read_pattern(r, node, where, false).literal;
    step.content = r.string(node, "content", where);
  } else if (type == "ByteFallback") {
    step.kind = DecKind::kByteFallback;
  } else if (type == "Fuse") {
    step.kind = DecKind::kFuse;
  } else if (type == "Strip") {
    step.kind = DecKind::kStrip;
    step.pattern = read_replacement(r, json{{"replacement", r.string(node, "content", where)}},
                                    where + ".content");
    step.start = static_cast<size_t>(r.integer(node, "start", where, 0));
    step.stop = static_cast<size_t>(r.integer(node, "stop", where, 0));
  } else {
    r.fail(where + ".type", "decoder '" + type +
                                "' is not supported (supported: ByteLevel, Metaspace, Replace, "
                                "ByteFallback, Fuse, Strip, Sequence)");
  }
  decoders.push_back(std::move(step));
}

void HfTokenizer::Impl::normalize(std::string& text) const {
  for (const NormStep& step : normalizers) {
    if (step.kind == NormKind::kPrepend) {
      if (!text.empty()) text.insert(0, step.text);
    } else if (step.kind == NormKind::kNfc) {
      text = unicode::nfc(text);
    } else if (!step.pattern.regex) {
      replace_all(text, step.pattern.literal, step.text);
    } else {
      std::string out;
      size_t prev = 0;
      step.pattern.for_each_match(text, [&](size_t start, size_t end) {
        out.append(text, prev, start - prev);
        out += step.text;
        prev = end;
      });
      out.append(text, prev, std::string::npos);
      text.swap(out);
    }
  }
}

std::vector<Piece> HfTokenizer::Impl::pre_tokenize(std::string text) const {
  std::vector<Piece> pieces;
  pieces.push_back({std::move(text), true});
  std::vector<Piece> next;
  // Isolated split: matches and the text between them, empty pieces dropped.
  auto split_isolated = [&next](Piece& piece, const Pattern& pattern) {
    size_t prev = 0;
    auto emit = [&](size_t start, size_t end) {
      if (end > start)
        next.push_back({piece.text.substr(start, end - start), piece.at_origin && start == 0});
    };
    pattern.for_each_match(piece.text, [&](size_t start, size_t end) {
      emit(prev, start);
      emit(start, end);
      prev = end;
    });
    emit(prev, piece.text.size());
  };
  for (const PreStep& step : pre_tokenizers) {
    next.clear();
    for (Piece& piece : pieces) {
      if (step.kind == PreKind::kByteLevel) {
        if (step.add_prefix_space && !piece.text.empty() && piece.text[0] != ' ')
          piece.text.insert(0, " ");
        const size_t first = next.size();
        if (step.use_regex) {
          split_isolated(piece, step.pattern);
        } else if (!piece.text.empty()) {
          next.push_back(std::move(piece));
        }
        for (size_t k = first; k < next.size(); ++k) next[k].text = byte_level_encode(next[k].text);
      } else if (step.kind == PreKind::kSplit) {
        split_isolated(piece, step.pattern);
      } else {  // Metaspace
        std::string& s = piece.text;
        replace_all(s, " ", step.replacement);
        const bool prepend = step.prepend == Prepend::kAlways ||
                             (step.prepend == Prepend::kFirst && piece.at_origin);
        if (prepend && !s.empty() && !starts_with(s, step.replacement))
          s.insert(0, step.replacement);
        if (!step.split) {
          if (!s.empty()) next.push_back(std::move(piece));
          continue;
        }
        // Split at every replacement character, each one merged with the piece after it
        // (tokenizers' MergedWithNext: a run of them gives single ones, then one with the word).
        std::vector<std::pair<size_t, size_t>> spans;
        std::vector<bool> is_match;
        size_t prev = 0;
        for (size_t hit = s.find(step.replacement); hit != std::string::npos;
             hit = s.find(step.replacement, prev)) {
          if (hit > prev) spans.push_back({prev, hit}), is_match.push_back(false);
          prev = hit + step.replacement.size();
          spans.push_back({hit, prev}), is_match.push_back(true);
        }
        if (prev < s.size()) spans.push_back({prev, s.size()}), is_match.push_back(false);
        std::vector<std::pair<size_t, size_t>> merged;
        bool previous_match = false;
        for (size_t k = spans.size(); k-- > 0;) {
          if (is_match[k] && !previous_match && !merged.empty()) {
            merged.back().first = spans[k].first;
          } else {
            merged.push_back(spans[k]);
          }
          previous_match = is_match[k];
        }
        for (size_t k = merged.size(); k-- > 0;) {
          const auto [start, end] = merged[k];
          next.push_back({s.substr(start, end - start), piece.at_origin && start == 0});
        }
      }
    }
    pieces.swap(next);
  }
  return pieces;
}

std::vector<int32_t> HfTokenizer::Impl::bpe(const std::string& word) const {
  // tokenizers' merge_word: one symbol per character; unknown characters become their <0xXX>
  // byte tokens (byte_fallback), else the unk token (consecutive ones fused with fuse_unk), else
  // they are dropped.
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool live;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&symbols](int32_t id) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1, true});
    if (index > 0) symbols[index - 1].next = index;
  };
  bool pending_unk = false;
  std::string character;
  for (size_t pos = 0; pos < word.size();) {
    const size_t length = unicode::decode_utf8(word, pos).length;
    character.assign(word, pos, length);
    pos += length;
    auto it = vocab.find(character);
    if (it != vocab.end()) {
      if (pending_unk) add(unk_id), pending_unk = false;
      add(it->second);
      continue;
    }
    if (byte_fallback) {
      bool all = true;
      for (char c : character) all = all && byte_ids[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        for (char c : character) add(byte_ids[static_cast<uint8_t>(c)]);
        continue;
      }
    }
    if (unk_id >= 0) {
      if (pending_unk && !fuse_unk) add(unk_id);
      pending_unk = true;
    }
  }
  if (pending_unk) add(unk_id);

  // Word::merge_all: pop the lowest (rank, position); skip entries that no longer hold.
  struct Merge {
    int32_t rank;
    int32_t pos;
    int32_t id;
    bool operator<(const Merge& other) const {  // priority_queue pops the "largest"
      return rank != other.rank ? rank > other.rank : pos > other.pos;
    }
  };
  std::priority_queue<Merge> queue;
  auto lookup = [this](int32_t left, int32_t right) -> const MergeTarget* {
    auto it = merges.find(pair_key(left, right));
    return it == merges.end() ? nullptr : &it->second;
  };
  for (size_t k = 0; k + 1 < symbols.size(); ++k) {
    if (const MergeTarget* m = lookup(symbols[k].id, symbols[k + 1].id))
      queue.push({m->rank, static_cast<int32_t>(k), m->id});
  }
  while (!queue.empty()) {
    const Merge top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.live || left.next < 0) continue;
    const int32_t right_pos = left.next;
    const MergeTarget* current = lookup(left.id, symbols[right_pos].id);
    if (!current || current->id != top.id) continue;  // an expired entry
    left.id = top.id;
    symbols[right_pos].live = false;
    left.next = symbols[right_pos].next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const MergeTarget* m = lookup(symbols[left.prev].id, left.id))
        queue.push({m->rank, left.prev, m->id});
    }
    if (left.next >= 0) {
      if (const MergeTarget* m = lookup(left.id, symbols[left.next].id))
        queue.push({m->rank, top.pos, m->id});
    }
  }
  std::vector<int32_t> ids;
  for (const Symbol& s : symbols)
    if (s.live) ids.push_back(s.id);
  return ids;
}

void HfTokenizer::Impl::tokenize_word(const std::string& word, std::vector<int32_t>& out) const {
  if (ignore_merges) {
    auto it = vocab.find(word);
    if (it != vocab.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (word.size() > kMaxCachedWord) {
    const std::vector<int32_t> ids = bpe(word);
    out.insert(out.end(), ids.begin(), ids.end());
    return;
  }
  WordCache& cache = thread_word_cache(serial);
  auto hit = cache.words.find(word);
  if (hit != cache.words.end()) {
    out.insert(out.end(), hit->second.begin(), hit->second.end());
    return;
  }
  std::vector<int32_t> ids = bpe(word);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cache.words.size() > (1u << 18)) cache.words.clear();  // bound memory
  cache.words.emplace(word, std::move(ids));
}

namespace {

// The special token string named by tokenizer_config.json's `key`: a string, {"content": ...},
// or null / absent ("").
std::string config_token(const JsonReader& r, const json& config, const std::string& key) {
  const json* value = r.find(config, key);
  if (!value) return "";
  if (value->is_string()) return value->get<std::string>();
  if (value->is_object()) return r.string(*value, "content", key);
  r.fail(key, "expected a string, {\"content\": ...} or null");
}

}  // namespace

HfTokenizer::HfTokenizer(const fs::path& path, const HfTokenizerOptions& options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  const fs::path file = fs::is_directory(path) ? path / "tokenizer.json" : path;
  m.file = file.string();
  check_user(fs::exists(file), file.string() + ": no such file (expected a Hugging Face " +
                                   "tokenizer.json, or a folder holding one)");
  const std::string text = read_file(file);
  const JsonReader r{file.string()};
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& error) {
    throw UserError(file.string() + ": not valid JSON (" + error.what() + ")");
  }
  if (!root.is_object()) r.fail("top level", "expected a tokenizer.json object");

  m.read_model(r, r.at(root, "model", "top level"));
  if (const json* node = r.find(root, "normalizer")) m.read_normalizer(r, *node, "normalizer");
  if (const json* node = r.find(root, "pre_tokenizer"))
    m.read_pre_tokenizer(r, *node, "pre_tokenizer");
  if (const json* node = r.find(root, "decoder")) {
    m.has_decoder = true;
    m.read_decoder(r, *node, "decoder");
  }

  // Ids: the model's vocabulary, then the added tokens (which win for decoding, as there).
  struct Added {
    std::string content;
    int32_t id;
    bool special;
  };
  std::vector<Added> added;
  if (const json* list = r.find(root, "added_tokens")) {
    if (!list->is_array()) r.fail("added_tokens", "expected an array");
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string where = "added_tokens[" + std::to_string(i) + "]";
      const int64_t id = r.integer((*list)[i], "id", where, -1);
      if (id < 0 || id >= (1 << 24)) r.fail(where + ".id", "expected an id in [0, 2^24)");
      added.push_back({r.string((*list)[i], "content", where), static_cast<int32_t>(id),
                       r.flag((*list)[i], "special", where, false)});
    }
  }
  int64_t max_id = -1;
  for (const auto& [token, id] : m.vocab) max_id = std::max<int64_t>(max_id, id);
  for (const Added& a : added) max_id = std::max<int64_t>(max_id, a.id);
  if (max_id < 0) r.fail("model.vocab", "the vocabulary is empty");
  m.id_to_token.assign(static_cast<size_t>(max_id + 1), "");
  m.skip_on_decode.assign(static_cast<size_t>(max_id + 1), true);
  for (const auto& [token, id] : m.vocab) m.id_to_token[id] = token, m.skip_on_decode[id] = false;
  for (const Added& a : added) m.id_to_token[a.id] = a.content, m.skip_on_decode[a.id] = a.special;

  // Special tokens.
  auto find_token = [&](const std::string& token) -> int32_t {
    for (const Added& a : added)
      if (a.content == token) return a.id;
    auto it = m.vocab.find(token);
    return it == m.vocab.end() ? -1 : it->second;
  };
  json config;
  const fs::path config_file = file.parent_path() / "tokenizer_config.json";
  const JsonReader cr{config_file.string()};
  if (fs::exists(config_file)) {
    try {
      config = json::parse(read_file(config_file));
    } catch (const json::exception& error) {
      throw UserError(config_file.string() + ": not valid JSON (" + error.what() + ")");
    }
  }
  // An option, else tokenizer_config.json's key, else the first well-known name present.
  auto resolve = [&](const std::string& option, const std::string& option_key,
                     const std::string& config_key,
                     std::initializer_list<const char*> known) -> int32_t {
    if (!option.empty()) {
      const int32_t id = find_token(option);
      check_user(id >= 0, option_key + ": token '" + option + "' is not in " + file.string());
      return id;
    }
    if (!config_key.empty()) {
      const std::string named = config_token(cr, config, config_key);
      if (!named.empty()) {
        const int32_t id = find_token(named);
        check_user(id >= 0, config_file.string() + ": " + config_key + " '" + named +
                                "' is not in " + file.string());
        return id;
      }
    }
    for (const char* name : known) {
      const int32_t id = find_token(name);
      if (id >= 0) return id;
    }
    return -1;
  };
  special_.eos = resolve(options.eos, "tokenizer.eos", "eos_token",
                         {"<|endoftext|>", "<|end_of_text|>", "</s>"});
  check_user(special_.eos >= 0,
             file.string() +
                 ": no end-of-text token found (no eos_token in tokenizer_config.json and "
                 "none of <|endoftext|>, <|end_of_text|>, </s>); set tokenizer.eos");
  special_.bos = resolve(options.bos, "tokenizer.bos", "bos_token", {"<|begin_of_text|>", "<s>"});
  if (special_.bos < 0) special_.bos = special_.eos;
  special_.pad = resolve("", "", "pad_token", {});
  if (special_.pad < 0) special_.pad = special_.eos;
  m.vocab_size = max_id + 1;
  special_.mask = resolve(options.mask, "tokenizer.mask", "", {"<mask>", "<|mask|>"});
  if (special_.mask < 0) special_.mask = static_cast<int32_t>(m.vocab_size++);  // appended

  m.fingerprint =
      "hf-" + Fnv64()
                  .update(text)
                  .update(std::to_string(special_.bos) + "," + std::to_string(special_.eos) + "," +
                          std::to_string(special_.pad) + "," + std::to_string(special_.mask))
                  .hex(16);
}

HfTokenizer::~HfTokenizer() = default;

int64_t HfTokenizer::vocab_size() const { return impl_->vocab_size; }

std::string HfTokenizer::fingerprint() const { return impl_->fingerprint; }

std::vector<int32_t> HfTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  if (text.empty()) return ids;
  ids.reserve(text.size() / 3);
  std::string normalized = text;
  impl_->normalize(normalized);
  for (const Piece& piece : impl_->pre_tokenize(std::move(normalized)))
    if (!piece.text.empty()) impl_->tokenize_word(piece.text, ids);
  return ids;
}

std::string HfTokenizer::decode(const std::vector<int32_t>& ids) const {
  const Impl& m = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    check_user(id >= 0 && id < m.vocab_size, "hf tokenizer: token id " + std::to_string(id) +
                                                 " outside [0, " + std::to_string(m.vocab_size) +
                                                 ")");
    if (id >= static_cast<int32_t>(m.id_to_token.size()) || m.skip_on_decode[id]) continue;
    tokens.push_back(m.id_to_token[id]);
  }
  if (!m.has_decoder) {  // tokenizers joins the token strings with spaces
    std::string text;
    for (size_t k = 0; k < tokens.size(); ++k) text += (k ? " " : "") + tokens[k];
    return text;
  }
  for (const DecStep& step : m.decoders) {
    std::vector<std::string> out;
    switch (step.kind) {
      case DecKind::kByteLevel: {
        // Each token's characters back to bytes; a token with a character outside the
        // alphabet (an added token) is kept as its UTF-8.
        const ByteLevelTables& t = byte_level_tables();
        std::string bytes;
        for (const std::string& token : tokens) {
          std::string decoded;
          bool ok = true;
          for (size_t pos = 0; pos < token.size() && ok;) {
            const unicode::Decoded ch = unicode::decode_utf8(token, pos);
            auto it = t.byte.find(ch.code_point);
            ok = it != t.byte.end();
            if (ok) decoded.push_back(static_cast<char>(it->second));
            pos += ch.length;
          }
          bytes += ok ? decoded : token;
        }
        out.push_back(std::move(bytes));
        break;
      }
      case DecKind::kMetaspace:
        for (size_t k = 0; k < tokens.size(); ++k) {
          std::string token = tokens[k];
          const bool drop = k == 0 && step.prepend != Prepend::kNever;
          replace_all(token, step.pattern, drop ? "" : " ");
          out.push_back(std::move(token));
        }
        break;
      case DecKind::kReplace:
        for (std::string& token : tokens) {
          replace_all(token, step.pattern, step.content);
          out.push_back(std::move(token));
        }
        break;
      case DecKind::kByteFallback: {
        // Runs of <0xXX> tokens become their bytes (raw, even when not valid UTF-8).
        auto byte_of = [](const std::string& token) -> int {
          if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return -1;
          int value = 0;
          for (int k = 3; k < 5; ++k) {
            const char c = token[k];
            const int digit = c >= '0' && c <= '9'   ? c - '0'
                              : c >= 'a' && c <= 'f' ? c - 'a' + 10
                              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                     : -1;
            if (digit < 0) return -1;
            value = value * 16 + digit;
          }
          return value;
        };
        std::string run;
        for (std::string& token : tokens) {
          const int byte = byte_of(token);
          if (byte >= 0) {
            run.push_back(static_cast<char>(byte));
            continue;
          }
          if (!run.empty()) out.push_back(std::move(run)), run.clear();
          out.push_back(std::move(token));
        }
        if (!run.empty()) out.push_back(std::move(run));
        break;
      }
      case DecKind::kFuse: {
        std::string joined;
        for (const std::string& token : tokens) joined += token;
        out.push_back(std::move(joined));
        break;
      }
      case DecKind::kStrip:
        for (std::string& token : tokens) {
          size_t begin = 0, end = token.size();
          const std::string& c = step.pattern;
          for (size_t k = 0; k < step.start && token.compare(begin, c.size(), c) == 0; ++k)
            begin += c.size();
          for (size_t k = 0; k < step.stop && end >= begin + c.size() &&
                             token.compare(end - c.size(), c.size(), c) == 0;
               ++k)
            end -= c.size();
          out.push_back(token.substr(begin, end - begin));
        }
        break;
    }
    tokens.swap(out);
  }
  std::string text;
  for (const std::string& token : tokens) text += token;
  return text;
}

}  // namespace attnlab
