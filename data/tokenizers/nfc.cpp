// NFC (see nfc.h): the Unicode standard's algorithm (UAX #15) over the generated tables.
#include "data/tokenizers/nfc.h"

#include <algorithm>
#include <vector>

#include "data/tokenizers/unicode.h"

namespace attnlab::unicode {

namespace {

using namespace nfc_detail;

// Hangul syllable arithmetic (Unicode chapter 3.12).
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

// An invalid byte b is carried as kRawByte + b: combining class 0, composes with nothing.
constexpr uint32_t kRawByte = 0x200000;

uint8_t combining_class(uint32_t cp) {
  if (cp < 0x300 || cp >= kRawByte) return 0;
  const CombiningClass* end = kCombiningClasses + kCombiningClassesCount;
  const CombiningClass* it = std::lower_bound(
      kCombiningClasses, end, cp,
      [](const CombiningClass& entry, uint32_t value) { return entry.code_point < value; });
  return it != end && it->code_point == cp ? it->ccc : 0;
}

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t index = cp - kSBase;
    out.push_back(kLBase + index / kNCount);
    out.push_back(kVBase + (index % kNCount) / kTCount);
    if (index % kTCount != 0) out.push_back(kTBase + index % kTCount);
    return;
  }
  if (cp >= 0xC0 && cp < kRawByte) {
    const Decomposition* end = kDecompositions + kDecompositionsCount;
    const Decomposition* it = std::lower_bound(
        kDecompositions, end, cp,
        [](const Decomposition& entry, uint32_t value) { return entry.code_point < value; });
    if (it != end && it->code_point == cp) {
      out.insert(out.end(), kDecompositionData + it->offset,
                 kDecompositionData + it->offset + it->length);
      return;
    }
  }
  out.push_back(cp);
}

// The primary composite of (first, second), or 0.
uint32_t compose(uint32_t first, uint32_t second) {
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase && second < kVBase + kVCount)
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 &&
      second > kTBase && second < kTBase + kTCount)
    return first + (second - kTBase);
  if (first >= kRawByte || second >= kRawByte) return 0;
  const Composition* end = kCompositions + kCompositionsCount;
  const Composition* it =
      std::lower_bound(kCompositions, end, std::make_pair(first, second),
                       [](const Composition& entry, const std::pair<uint32_t, uint32_t>& value) {
                         return std::make_pair(entry.first, entry.second) < value;
                       });
  return it != end && it->first == first && it->second == second ? it->composite : 0;
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp >= kRawByte) {
    out.push_back(static_cast<char>(cp - kRawByte));
  } else if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

std::string nfc(const std::string& text) {
  if (std::all_of(text.begin(), text.end(), [](char c) { return (c & 0x80) == 0; })) return text;
  // 1. Full canonical decomposition.
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const Decoded ch = decode_utf8(text, pos);
    if (ch.code_point == kInvalid) {
      cps.push_back(kRawByte + static_cast<uint8_t>(text[pos]));
    } else {
      decompose(ch.code_point, cps);
    }
    pos += ch.length;
  }
  // 2. Canonical ordering: runs of non-starters sorted stably by combining class.
  std::vector<uint8_t> ccc(cps.size());
  for (size_t i = 0; i < cps.size(); ++i) ccc[i] = combining_class(cps[i]);
  for (size_t i = 0; i < cps.size();) {
    if (ccc[i] == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && ccc[j] != 0) ++j;
    if (j - i > 1) {
      std::vector<std::pair<uint8_t, uint32_t>> run;
      for (size_t k = i; k < j; ++k) run.push_back({ccc[k], cps[k]});
      std::stable_sort(run.begin(), run.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      for (size_t k = i; k < j; ++k) ccc[k] = run[k - i].first, cps[k] = run[k - i].second;
    }
    i = j;
  }
  // 3. Canonical composition: each character joins the last starter unless blocked.
  std::vector<uint32_t> out;
  std::vector<uint8_t> out_ccc;
  out.reserve(cps.size());
  long starter = -1;  // index in `out`
  for (size_t i = 0; i < cps.size(); ++i) {
    const uint32_t cp = cps[i];
    const uint8_t cc = ccc[i];
    if (starter >= 0) {
      const uint8_t last = out_ccc.back();
      const bool adjacent = static_cast<size_t>(starter) + 1 == out.size();
      const bool blocked = !adjacent && (last == 0 || last >= cc);
      if (!blocked) {
        const uint32_t composite = compose(out[starter], cp);
        if (composite != 0) {
          out[starter] = composite;
          continue;
        }
      }
    }
    if (cc == 0) starter = static_cast<long>(out.size());
    out.push_back(cp);
    out_ccc.push_back(cc);
  }
  std::string result;
  result.reserve(text.size());
  for (uint32_t cp : out) append_utf8(cp, result);
  return result;
}

}  // namespace attnlab::unicode
