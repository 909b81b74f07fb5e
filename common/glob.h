// glob_match: shell-style wildcard matching over plain strings (fnmatch without FNM_PATHNAME), used
// for parameter-name patterns such as `freeze: ["blocks.0.*"]` and `lr_multipliers`. `*` matches
// any run of characters *including dots* (so "blocks.0.*" covers every parameter below block 0),
// `?` one character, `[abc]` / `[a-z]` / `[!abc]` a character class. No escapes: parameter names
// never contain wildcard characters.
#pragma once

#include <string>
#include <vector>

namespace attnlab {

// True when the whole of `text` matches `pattern`.
bool glob_match(const std::string& pattern, const std::string& text);

// The entries of `names` matching `pattern`, in their original order.
std::vector<std::string> glob_filter(const std::string& pattern,
                                     const std::vector<std::string>& names);

}  // namespace attnlab
