// Implementation of suggestions.h.
#include "common/suggestions.h"

#include <algorithm>

namespace attnlab {
namespace {
constexpr size_t kMaxSuggestionLength = 100;
}  // namespace

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> previous(b.size() + 1), current(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

std::optional<std::string> closest_match(const std::string& wanted,
                                         const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  // Typos of very long names get no suggestion: the distances would cost more than they help.
  if (wanted.size() > kMaxSuggestionLength) return best;
  size_t best_distance = std::max<size_t>(2, wanted.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    // The length difference is a lower bound of the distance: skip what cannot win.
    size_t gap = candidate.size() > wanted.size() ? candidate.size() - wanted.size()
                                                  : wanted.size() - candidate.size();
    if (gap >= best_distance) continue;
    size_t d = edit_distance(wanted, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

std::string did_you_mean(const std::string& wanted, const std::vector<std::string>& candidates) {
  auto best = closest_match(wanted, candidates);
  return best ? " (did you mean " + *best + "?)" : "";
}

std::string join_names(const std::vector<std::string>& names, size_t limit) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += ", ...";
  return out;
}

}  // namespace attnlab
