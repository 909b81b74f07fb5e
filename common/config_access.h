// Checked, typed reads of a composed config (a YAML::Node tree) by dotted key, e.g.
// cfg::get<int64_t>(config, "model.d_model"). Every failure is a UserError that names the key,
// the value found and the type expected, so a bad override never surfaces as a yaml-cpp throw.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace attnlab::cfg {

// Splits "a.b.c" into {"a","b","c"}.
std::vector<std::string> split_key(const std::string& dotted_key);

// The node at `dotted_key`, or an invalid/undefined node when any part is missing.
YAML::Node find(const YAML::Node& root, const std::string& dotted_key);

// True when the key exists and is not null.
bool has(const YAML::Node& root, const std::string& dotted_key);

// The node at `dotted_key`; throws UserError("missing config key ...") when absent.
YAML::Node require(const YAML::Node& root, const std::string& dotted_key);

// Human-readable type name for error messages ("int", "float", "bool", "string", "list"...).
template <typename T>
std::string type_name();
template <> std::string type_name<int>();
template <> std::string type_name<int64_t>();
template <> std::string type_name<double>();
template <> std::string type_name<float>();
template <> std::string type_name<bool>();
template <> std::string type_name<std::string>();
template <> std::string type_name<std::vector<int64_t>>();
template <> std::string type_name<std::vector<int>>();
template <> std::string type_name<std::vector<double>>();
template <> std::string type_name<std::vector<std::string>>();

// Converts one node to T or throws UserError naming `dotted_key` (used by get/get_or).
template <typename T>
T convert(const YAML::Node& node, const std::string& dotted_key) {
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    std::string shown = node.IsScalar() ? node.Scalar() : YAML::Dump(node);
    throw UserError("config key '" + dotted_key + "': expected " + type_name<T>() + ", got '" +
                    shown + "'");
  }
}

template <typename T>
T get(const YAML::Node& root, const std::string& dotted_key) {
  YAML::Node node = require(root, dotted_key);
  if (node.IsNull())
    throw UserError("config key '" + dotted_key + "' is null; expected " + type_name<T>());
  return convert<T>(node, dotted_key);
}

template <typename T>
T get_or(const YAML::Node& root, const std::string& dotted_key, const T& fallback) {
  YAML::Node node = find(root, dotted_key);
  if (!node.IsDefined() || node.IsNull()) return fallback;
  return convert<T>(node, dotted_key);
}

}  // namespace attnlab::cfg
