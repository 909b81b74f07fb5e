// "Did you mean ...?" for config keys, option names and registry entries (used by the config
// engine, the registries and the command line; a plain text utility, hence common/): the closest
// candidate by edit distance (Levenshtein over the full dotted key), offered only when it is
// plausibly a typo.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace attnlab {

size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `wanted`, when its distance is at most max(2, wanted.size() / 3);
// none for a `wanted` longer than 100 bytes.
std::optional<std::string> closest_match(const std::string& wanted,
                                         const std::vector<std::string>& candidates);

// " (did you mean x?)" or "" — ready to append to an error message.
std::string did_you_mean(const std::string& wanted, const std::vector<std::string>& candidates);

// "a, b, c" (at most `limit` names, then ", ...").
std::string join_names(const std::vector<std::string>& names, size_t limit = 30);

}  // namespace attnlab
