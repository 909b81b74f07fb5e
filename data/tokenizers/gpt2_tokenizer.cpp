// GPT-2 byte-level BPE (see gpt2_tokenizer.h). Follows OpenAI's encoder.py: bytes are mapped
// to printable code points (bytes_to_unicode) only to name vocabulary entries; here every entry
// is mapped back to raw bytes once at load time, so encoding works on bytes and ids directly.
#include "data/tokenizers/gpt2_tokenizer.h"

#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "data/data_cache.h"
#include "data/hash.h"
#include "data/tokenizers/unicode.h"
#include "data/tokenizers/word_cache.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

// encoder.py's bytes_to_unicode(), inverted: printable code point -> byte.
std::unordered_map<uint32_t, uint8_t> unicode_to_bytes() {
  std::unordered_map<uint32_t, uint8_t> inverse;
  uint32_t next_unprintable = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    inverse[printable ? b : next_unprintable++] = static_cast<uint8_t>(b);
  }
  return inverse;
}

// A vocabulary entry's name (UTF-8 of mapped code points) -> its raw bytes.
std::string name_to_bytes(const std::string& name,
                          const std::unordered_map<uint32_t, uint8_t>& inverse,
                          const fs::path& file) {
  std::string bytes;
  for (size_t pos = 0; pos < name.size();) {
    const unicode::Decoded ch = unicode::decode_utf8(name, pos);
    auto it = inverse.find(ch.code_point);
    check_user(it != inverse.end(),
               file.string() + ": entry '" + name + "' is not in GPT-2's byte-to-unicode alphabet");
    bytes.push_back(static_cast<char>(it->second));
    pos += ch.length;
  }
  return bytes;
}

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

enum class CharClass { kLetter, kNumber, kSpace, kOther };

CharClass classify(uint32_t cp) {
  if (cp == unicode::kInvalid) return CharClass::kOther;
  if (unicode::is_letter(cp)) return CharClass::kLetter;
  if (unicode::is_number(cp)) return CharClass::kNumber;
  if (unicode::is_whitespace(cp)) return CharClass::kSpace;
  return CharClass::kOther;
}

}  // namespace

std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  const std::string owned(text);  // decode_utf8 takes a std::string
  const size_t n = owned.size();
  auto class_at = [&](size_t pos) { return classify(unicode::decode_utf8(owned, pos).code_point); };
  auto next = [&](size_t pos) { return pos + unicode::decode_utf8(owned, pos).length; };

  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < n) {
    // 's 't 're 've 'm 'll 'd (case-sensitive, ASCII apostrophe only).
    if (owned[i] == '\'') {
      size_t length = 0;
      for (const char* suffix : {"s", "t", "re", "ve", "m", "ll", "d"}) {
        const std::string_view s(suffix);
        if (text.substr(i + 1, s.size()) == s) {
          length = 1 + s.size();
          break;
        }
      }
      if (length > 0) {
        out.push_back(text.substr(i, length));
        i += length;
        continue;
      }
    }
    // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional ASCII space, then a run of one
    // class. If the character after the space is whitespace or the end, none of them match.
    const size_t start = (owned[i] == ' ' && i + 1 < n) ? i + 1 : i;
    const CharClass run_class = class_at(start);
    if (run_class != CharClass::kSpace) {
      size_t end = next(start);
      while (end < n && class_at(end) == run_class) end = next(end);
      out.push_back(text.substr(i, end - i));
      i = end;
      continue;
    }
    // '\s+(?!\S)' then '\s+': a whitespace run, minus its last character when a non-space
    // follows and the run is longer than one character (that character then prefixes the word).
    size_t end = i, last = i;
    while (end < n && class_at(end) == CharClass::kSpace) {
      last = end;
      end = next(end);
    }
    if (end < n && last > i) end = last;
    out.push_back(text.substr(i, end - i));
    i = end;
  }
  return out;
}

Gpt2Tokenizer::Gpt2Tokenizer(const fs::path& dir) : serial_(next_word_cache_serial()) {
  const fs::path encoder_file = dir / "encoder.json";
  const fs::path merges_file = dir / "vocab.bpe";
  const std::string encoder_text = read_file(encoder_file);
  const std::string merges_text = read_file(merges_file);
  const auto inverse = unicode_to_bytes();

  nlohmann::json encoder;
  try {
    encoder = nlohmann::json::parse(encoder_text);
  } catch (const nlohmann::json::exception& error) {
    throw UserError(encoder_file.string() + ": not valid JSON (" + error.what() + ")");
  }
  check_user(encoder.is_object() && encoder.size() == 50257,
             encoder_file.string() + ": expected a JSON object with 50257 entries");
  pieces_.resize(encoder.size());
  for (const auto& [name, value] : encoder.items()) {
    check_user(value.is_number_integer() && value.get<int64_t>() >= 0 &&
                   value.get<int64_t>() < static_cast<int64_t>(pieces_.size()),
               encoder_file.string() + ": bad id for entry '" + name + "'");
    const auto id = value.get<int32_t>();
    pieces_[id] = name_to_bytes(name, inverse, encoder_file);
    ids_[pieces_[id]] = id;
  }
  check_user(pieces_[50256] == "<|endoftext|>",
             encoder_file.string() + ": id 50256 is not <|endoftext|>");

  // vocab.bpe: "#version: 0.2", then one merge "left right" per line, in rank order.
  std::istringstream lines(merges_text);
  std::string line;
  std::getline(lines, line);
  check_user(line.rfind("#version", 0) == 0, merges_file.string() + ": missing '#version' line");
  int32_t rank = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    check_user(space != std::string::npos && space > 0 && space + 1 < line.size(),
               merges_file.string() + ": bad merge line '" + line + "'");
    const std::string left = name_to_bytes(line.substr(0, space), inverse, merges_file);
    const std::string right = name_to_bytes(line.substr(space + 1), inverse, merges_file);
    auto l = ids_.find(left), r = ids_.find(right), merged = ids_.find(left + right);
    check_user(l != ids_.end() && r != ids_.end() && merged != ids_.end(),
               merges_file.string() + ": merge '" + line + "' uses pieces not in encoder.json");
    merge_rank_.emplace(pair_key(l->second, r->second), rank++);
  }
  check_user(rank == 50000,
             merges_file.string() + ": expected 50000 merges, found " + std::to_string(rank));
  special_ = SpecialTokens{50256, 50256, 50257, 50258};
  fingerprint_ = "gpt2-" + Fnv64().update(encoder_text).update(merges_text).hex(8);
}

void Gpt2Tokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  WordCache& cache = thread_word_cache(serial_);
  std::string key(word);
  auto hit = cache.words.find(key);
  if (hit != cache.words.end()) {
    out.insert(out.end(), hit->second.begin(), hit->second.end());
    return;
  }
  std::vector<int32_t> symbols;
  symbols.reserve(word.size());
  for (char byte : word) symbols.push_back(ids_.at(std::string(1, byte)));
  // Repeatedly merge the lowest-ranked adjacent pair everywhere it occurs (encoder.py's bpe()).
  while (symbols.size() > 1) {
    int32_t best_rank = std::numeric_limits<int32_t>::max();
    for (size_t k = 0; k + 1 < symbols.size(); ++k) {
      auto it = merge_rank_.find(pair_key(symbols[k], symbols[k + 1]));
      if (it != merge_rank_.end() && it->second < best_rank) best_rank = it->second;
    }
    if (best_rank == std::numeric_limits<int32_t>::max()) break;
    std::vector<int32_t> merged;
    merged.reserve(symbols.size());
    for (size_t k = 0; k < symbols.size(); ++k) {
      if (k + 1 < symbols.size()) {
        auto it = merge_rank_.find(pair_key(symbols[k], symbols[k + 1]));
        if (it != merge_rank_.end() && it->second == best_rank) {
          merged.push_back(ids_.at(pieces_[symbols[k]] + pieces_[symbols[k + 1]]));
          ++k;
          continue;
        }
      }
      merged.push_back(symbols[k]);
    }
    symbols.swap(merged);
  }
  out.insert(out.end(), symbols.begin(), symbols.end());
  if (cache.words.size() > (1u << 18)) cache.words.clear();  // bound memory on huge vocabularies
  cache.words.emplace(std::move(key), std::move(symbols));
}

std::vector<int32_t> Gpt2Tokenizer::encode(const std::string& text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3);
  for (std::string_view word : gpt2_pretokenize(text)) encode_word(word, ids);
  return ids;
}

std::string Gpt2Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string text;
  for (int32_t id : ids) {
    check_user(id >= 0 && id < vocab_size(), "gpt2 tokenizer: token id " + std::to_string(id) +
                                                 " outside [0, " + std::to_string(vocab_size()) +
                                                 ")");
    if (id < static_cast<int32_t>(pieces_.size())) text += pieces_[id];  // PAD/MASK -> ""
  }
  return text;
}

}  // namespace attnlab
