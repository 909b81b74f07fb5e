// Minimal Unicode support for tokenisers: a lenient UTF-8 decoder and the character classes
// GPT-2's pre-tokenisation pattern uses (\p{L}, \p{N}, \s). std::regex cannot express \p{..},
// so the letter/number ranges come from a table generated once from Python's unicodedata
// (scripts/gen_unicode_tables.py -> data/tokenizers/unicode_tables.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace attnlab::unicode {

struct CodePointRange {
  uint32_t lo;
  uint32_t hi;  // inclusive
};

// One decoded character: its code point and how many bytes of the input it spans. Invalid
// UTF-8 (stray continuation bytes, truncated or overlong sequences, surrogates) decodes as a
// single byte with code point kInvalid, so every byte string splits into characters and
// byte-level tokenisers still round-trip it.
struct Decoded {
  uint32_t code_point;
  size_t length;
};
constexpr uint32_t kInvalid = 0xFFFFFFFF;

// Decodes the character starting at text[pos] (pos < text.size()).
Decoded decode_utf8(const std::string& text, size_t pos);

bool is_letter(uint32_t code_point);      // general category L*
bool is_number(uint32_t code_point);      // general category N*
bool is_whitespace(uint32_t code_point);  // Unicode White_Space property

namespace detail {
extern const CodePointRange kLetterRanges[];
extern const size_t kLetterRangesCount;
extern const CodePointRange kNumberRanges[];
extern const size_t kNumberRangesCount;
}  // namespace detail

}  // namespace attnlab::unicode
