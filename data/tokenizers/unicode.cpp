// UTF-8 decoding and character classes for the tokenisers (see unicode.h).
#include "data/tokenizers/unicode.h"

#include <algorithm>

namespace attnlab::unicode {

namespace {

bool in_ranges(uint32_t cp, const CodePointRange* ranges, size_t count) {
  // Ranges are sorted and disjoint: find the first range whose upper end is >= cp.
  const CodePointRange* end = ranges + count;
  const CodePointRange* it = std::lower_bound(
      ranges, end, cp, [](const CodePointRange& r, uint32_t value) { return r.hi < value; });
  return it != end && it->lo <= cp;
}

}  // namespace

Decoded decode_utf8(const std::string& text, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t lead = byte(pos);
  if (lead < 0x80) return {lead, 1};
  size_t length;
  uint32_t cp;
  uint32_t min_cp;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, cp = lead & 0x1F, min_cp = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, cp = lead & 0x0F, min_cp = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, cp = lead & 0x07, min_cp = 0x10000;
  } else {
    return {kInvalid, 1};
  }
  if (pos + length > text.size()) return {kInvalid, 1};
  for (size_t i = 1; i < length; ++i) {
    const uint8_t next = byte(pos + i);
    if ((next & 0xC0) != 0x80) return {kInvalid, 1};
    cp = (cp << 6) | (next & 0x3F);
  }
  // Overlong encodings, surrogates and values past U+10FFFF are not valid UTF-8.
  if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {kInvalid, 1};
  return {cp, length};
}

bool is_letter(uint32_t code_point) {
  if (code_point < 0x80) {
    return (code_point >= 'a' && code_point <= 'z') || (code_point >= 'A' && code_point <= 'Z');
  }
  return in_ranges(code_point, detail::kLetterRanges, detail::kLetterRangesCount);
}

bool is_number(uint32_t code_point) {
  if (code_point < 0x80) return code_point >= '0' && code_point <= '9';
  return in_ranges(code_point, detail::kNumberRanges, detail::kNumberRangesCount);
}

bool is_whitespace(uint32_t code_point) {
  // The Unicode White_Space property (PropList.txt), which is what \s means in Python's `regex`
  // module used by GPT-2's encoder.py and in tiktoken. (ECMAScript's \s differs only on U+0085,
  // which it excludes, and U+FEFF, which it includes.)
  switch (code_point) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return code_point >= 0x2000 && code_point <= 0x200A;
  }
}

}  // namespace attnlab::unicode
