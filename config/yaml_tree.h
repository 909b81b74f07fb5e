// Value-level helpers for config trees held as YAML::Node: YAML 1.2 core-schema type inference
// for scalars (so overrides can be type-checked against defaults), deep copies (yaml-cpp nodes
// share storage on assignment, which silently aliases subtrees), deep merges, and dotted-path
// reads/writes. Strings that must stay strings (quoted in YAML or on the command line) carry the
// yaml-cpp non-plain tag "!"; plain scalars are inferred from their text.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace attnlab::config {

enum class ValueKind { kNull, kBool, kInt, kFloat, kString, kList, kMap };

// Kind of a node: null/bool/int/float/string by YAML 1.2 core schema for plain scalars, string
// for quoted ("!"-tagged) scalars, list, map. Undefined nodes count as null.
ValueKind value_kind(const YAML::Node& node);
// Kind of plain scalar text under the core schema ("1e3" and "3e-4" are floats).
ValueKind infer_scalar_kind(const std::string& text);
std::string kind_name(ValueKind kind);

// A scalar that stays a string whatever its text looks like (quoted).
YAML::Node string_scalar(const std::string& text);
// A plain scalar whose kind is inferred from its text.
YAML::Node plain_scalar(const std::string& text);
YAML::Node null_node();

// True for a string scalar that contains an interpolation "${" (not escaped as "\${").
bool has_interpolation(const YAML::Node& node);

// A structurally independent copy of `node` (tags and marks kept).
YAML::Node deep_copy(const YAML::Node& node);

// Merges `src` into `dst` (both maps): maps merge recursively, everything else is replaced by a
// copy of the src value. Returns dst.
void merge_into(YAML::Node& dst, const YAML::Node& src);

// Splits a dotted key into its parts; an empty key means the root.
std::vector<std::string> key_parts(const std::string& dotted_key);
std::string join_key(const std::vector<std::string>& parts, size_t count);

// The child `key` of a map as a valid handle, or a (valid) undefined node when absent.
YAML::Node child_node(const YAML::Node& map, const std::string& key);

// Node at `dotted_key` (fresh handle, tree untouched) or an undefined node when any part misses.
YAML::Node find_node(const YAML::Node& root, const std::string& dotted_key);
// Sets `dotted_key` to `value`, creating intermediate maps. Throws UserError when a prefix of the
// key is a non-map value.
void set_node(YAML::Node& root, const std::string& dotted_key, const YAML::Node& value);
// Removes `dotted_key`; returns false when it is absent.
bool erase_node(YAML::Node& root, const std::string& dotted_key);
// The map at `dotted_key`, created (with parents) when absent; throws UserError on a non-map.
YAML::Node ensure_map(YAML::Node& root, const std::string& dotted_key);

// Every dotted key in the tree (maps and leaves), depth first, for suggestions.
std::vector<std::string> all_keys(const YAML::Node& root);

}  // namespace attnlab::config
