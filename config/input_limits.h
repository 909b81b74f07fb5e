// Limits on config input, so that hostile or broken YAML files and overrides end with one clear
// UserError instead of running for minutes, exhausting memory or overflowing the stack: document
// size, nesting depth, size after YAML alias expansion, keys per mapping and key length.
// check_yaml_text() enforces them on YAML text before yaml-cpp builds a tree (a recursive alias
// would become a cyclic graph that every later walk follows forever), and it reports a quoted
// string left open at the end of the file, which yaml-cpp accepts when the file ends with a line
// break.
#pragma once

#include <cstddef>
#include <string>

namespace attnlab::config {

// One config file, saved config or override.
inline constexpr size_t kMaxDocumentBytes = size_t{1} << 20;
// Values (maps, lists, scalars) in one document, each alias counted with its whole target.
inline constexpr size_t kMaxNodes = 20000;
// Values of all the files one composition loads, and values interpolation may copy.
inline constexpr size_t kMaxComposedNodes = 100000;
// Config files one composition may load (defaults lists may name a config more than once).
inline constexpr size_t kMaxConfigFiles = 1000;
// Keys of one mapping (yaml-cpp looks keys up one by one, so merging is quadratic in this).
inline constexpr size_t kMaxMapEntries = 2000;
// Nesting of maps and lists, and parts of a dotted key.
inline constexpr int kMaxDepth = 64;
// Bytes of one mapping key, dotted key, package or option name.
inline constexpr size_t kMaxKeyLength = 256;
// Text that interpolations may produce while resolving one config.
inline constexpr size_t kMaxResolvedText = size_t{16} << 20;

struct YamlStats {
  size_t nodes = 0;  // values after alias expansion
  int depth = 0;     // deepest nesting of maps and lists (a scalar document is 0)
};

// Checks YAML text against the limits above; UserError naming `origin` (and line:column where
// the text has one) on a violation. yaml-cpp syntax errors are left to the caller (they are
// thrown as YAML::Exception), except the unclosed quote, which is a UserError here.
YamlStats check_yaml_text(const std::string& text, const std::string& origin);

// Checks a dotted key, group path or package (length and number of parts); `context` starts the
// error message, e.g. "cannot parse override 'a.b=1'".
void check_key_path(const std::string& key, const std::string& context);

// True for a group option name: a file name of the group's folder without ".yaml", at most
// kMaxKeyLength bytes, not starting with '.', without '/', '\\' or control characters. Never a
// path, so an option cannot leave its group's folder.
bool valid_option_name(const std::string& name);

// "1 MiB", "16 MiB", "512 bytes" for messages.
std::string byte_size(size_t bytes);

// `text` for an error message: whole when short, else its first 100 bytes and "...".
std::string preview(const std::string& text);

}  // namespace attnlab::config
