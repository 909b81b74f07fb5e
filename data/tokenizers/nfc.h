// Unicode Normalization Form C (canonical decomposition, canonical ordering, canonical
// composition), for the `hf` tokenizer's NFC normalizer (Qwen2). The data comes from Python's
// unicodedata through scripts/gen_nfc_tables.py (data/tokenizers/nfc_tables.cpp); Hangul syllables
// are composed and decomposed algorithmically.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace attnlab::unicode {

// NFC of UTF-8 text. Invalid UTF-8 bytes are kept as they are and block composition across them.
// ASCII-only text is returned unchanged without further work.
std::string nfc(const std::string& text);

namespace nfc_detail {
struct CombiningClass {
  uint32_t code_point;
  uint8_t ccc;
};
struct Decomposition {
  uint32_t code_point;
  uint32_t offset;  // into kDecompositionData
  uint32_t length;
};
struct Composition {
  uint32_t first;
  uint32_t second;
  uint32_t composite;
};
extern const CombiningClass kCombiningClasses[];
extern const size_t kCombiningClassesCount;
extern const uint32_t kDecompositionData[];
extern const Decomposition kDecompositions[];
extern const size_t kDecompositionsCount;
extern const Composition kCompositions[];  // sorted by (first, second)
extern const size_t kCompositionsCount;
}  // namespace nfc_detail

}  // namespace attnlab::unicode
