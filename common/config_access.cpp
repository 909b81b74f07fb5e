// Implementation of the dotted-key config readers declared in config_access.h.
#include "common/config_access.h"

#include <yaml-cpp/yaml.h>

#include <sstream>

namespace attnlab::cfg {

std::vector<std::string> split_key(const std::string& dotted_key) {
  std::vector<std::string> parts;
  std::stringstream stream(dotted_key);
  std::string part;
  while (std::getline(stream, part, '.')) parts.push_back(part);
  return parts;
}

YAML::Node find(const YAML::Node& root, const std::string& dotted_key) {
  // YAML::Node assignment rebinds shared storage; walk with fresh handles so the tree is untouched.
  YAML::Node current;
  current.reset(root);
  for (const auto& part : split_key(dotted_key)) {
    if (!current.IsDefined() || !current.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    YAML::Node next = current[part];
    if (!next.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
    current.reset(next);
  }
  return current;
}

bool has(const YAML::Node& root, const std::string& dotted_key) {
  YAML::Node node = find(root, dotted_key);
  return node.IsDefined() && !node.IsNull();
}

YAML::Node require(const YAML::Node& root, const std::string& dotted_key) {
  YAML::Node node = find(root, dotted_key);
  if (!node.IsDefined()) throw UserError("missing config key '" + dotted_key + "'");
  return node;
}

template <>
std::string type_name<int>() {
  return "int";
}
template <>
std::string type_name<int64_t>() {
  return "int";
}
template <>
std::string type_name<double>() {
  return "float";
}
template <>
std::string type_name<float>() {
  return "float";
}
template <>
std::string type_name<bool>() {
  return "bool";
}
template <>
std::string type_name<std::string>() {
  return "string";
}
template <>
std::string type_name<std::vector<int64_t>>() {
  return "list of ints";
}
template <>
std::string type_name<std::vector<int>>() {
  return "list of ints";
}
template <>
std::string type_name<std::vector<double>>() {
  return "list of floats";
}
template <>
std::string type_name<std::vector<std::string>>() {
  return "list of strings";
}

}  // namespace attnlab::cfg
