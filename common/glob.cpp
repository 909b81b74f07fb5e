// Iterative wildcard matcher with single-star backtracking: linear in practice and free of the
// exponential blow-up a naive recursive matcher has on patterns like "*a*a*a*b".
#include "common/glob.h"

#include <cstddef>

namespace attnlab {
namespace {

// Matches one bracket expression starting at pattern[p] == '['. On success sets `end` to the index
// just past ']' and returns whether `c` is in the class. A '[' without a closing ']' is treated as
// a literal character (end = p + 1).
bool match_class(const std::string& pattern, size_t p, char c, size_t& end) {
  size_t i = p + 1;
  bool negate = false;
  if (i < pattern.size() && (pattern[i] == '!' || pattern[i] == '^')) {
    negate = true;
    ++i;
  }
  bool matched = false;
  bool first = true;
  for (; i < pattern.size(); ++i) {
    char lo = pattern[i];
    if (lo == ']' && !first) {
      end = i + 1;
      return matched != negate;
    }
    first = false;
    if (i + 2 < pattern.size() && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
      char hi = pattern[i + 2];
      if (lo <= c && c <= hi) matched = true;
      i += 2;
    } else if (lo == c) {
      matched = true;
    }
  }
  end = p + 1;  // unterminated class: literal '['
  return c == '[';
}

}  // namespace

bool glob_match(const std::string& pattern, const std::string& text) {
  size_t p = 0, t = 0;
  size_t star_p = std::string::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star_p = p++;
      star_t = t;
      continue;
    }
    if (p < pattern.size()) {
      if (pattern[p] == '?') {
        ++p;
        ++t;
        continue;
      }
      if (pattern[p] == '[') {
        size_t end = 0;
        if (match_class(pattern, p, text[t], end)) {
          p = end;
          ++t;
          continue;
        }
      } else if (pattern[p] == text[t]) {
        ++p;
        ++t;
        continue;
      }
    }
    // Mismatch: let the last star swallow one more character, or fail.
    if (star_p == std::string::npos) return false;
    p = star_p + 1;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::vector<std::string> glob_filter(const std::string& pattern,
                                     const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const auto& name : names)
    if (glob_match(pattern, name)) out.push_back(name);
  return out;
}

}  // namespace attnlab
