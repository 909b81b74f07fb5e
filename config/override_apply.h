// Applying value overrides (key=value, +key=value, ++key=value, ~key[=value]) to a config tree,
// with Hydra's rules plus type checks: `key=value` needs an existing key and a value of the
// default's type (int -> float promotion is fine, a null default or null value accepts anything,
// scalars assigned to a string default become strings); `++` is the unchecked escape hatch. A key
// that has moved (moved_keys.h) is refused with one line naming its new key, whatever the op.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>

#include "config/override_parser.h"

namespace attnlab::config {

// Applies one parsed, non-sweep value override to `root` in place; UserError on failure, naming
// the key, where it was expected and the closest existing key.
void apply_key_override(YAML::Node& root, const Override& o);

// The value to store where the default is `existing` (the type rule of `key=value` above: int ->
// float promotion, null on either side, scalars -> string), or nullopt when the kinds clash.
std::optional<YAML::Node> value_for_default(const YAML::Node& existing, const YAML::Node& value);

// A value for an error message, on one line, cut to its first 100 bytes.
std::string shown_value(const YAML::Node& node);

// Structural equality of two values by kind and text (used by ~key=value).
bool same_value(const YAML::Node& a, const YAML::Node& b);

}  // namespace attnlab::config
