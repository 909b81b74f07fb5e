// Implementation of yaml_tree.h: core-schema inference, copies, merges and dotted-path access.
#include "config/yaml_tree.h"

#include <cctype>

#include "common/error.h"

namespace attnlab::config {
namespace {

bool all_of(const std::string& s, size_t from, int (*pred)(int)) {
  if (from >= s.size()) return false;
  for (size_t i = from; i < s.size(); ++i)
    if (!pred(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

int is_octal(int c) { return c >= '0' && c <= '7'; }

bool is_core_int(const std::string& s) {
  if (s.size() > 2 && s[0] == '0' && s[1] == 'o') return all_of(s, 2, is_octal);
  if (s.size() > 2 && s[0] == '0' && s[1] == 'x') return all_of(s, 2, isxdigit);
  size_t start = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  return all_of(s, start, isdigit);
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? plus .inf/.nan spellings.
bool is_core_float(const std::string& s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  std::string rest = s.substr(i);
  if (rest == ".inf" || rest == ".Inf" || rest == ".INF") return true;
  if (i == 0 && (s == ".nan" || s == ".NaN" || s == ".NAN")) return true;
  size_t digits_before = 0, digits_after = 0;
  while (i < s.size() && isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits_before;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits_after;
    if (digits_before == 0 && digits_after == 0) return false;
  } else if (digits_before == 0) {
    return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && isdigit(static_cast<unsigned char>(s[i]))) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

}  // namespace

ValueKind infer_scalar_kind(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return ValueKind::kNull;
  if (s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" || s == "FALSE")
    return ValueKind::kBool;
  if (is_core_int(s)) return ValueKind::kInt;
  if (is_core_float(s)) return ValueKind::kFloat;
  return ValueKind::kString;
}

ValueKind value_kind(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return ValueKind::kNull;
  if (node.IsSequence()) return ValueKind::kList;
  if (node.IsMap()) return ValueKind::kMap;
  const std::string& tag = node.Tag();
  if (tag.empty() || tag == "?") return infer_scalar_kind(node.Scalar());
  // Explicit YAML tags (!!int, !!str, ...) win over the text.
  const std::string core = "tag:yaml.org,2002:";
  if (tag == core + "int") return ValueKind::kInt;
  if (tag == core + "float") return ValueKind::kFloat;
  if (tag == core + "bool") return ValueKind::kBool;
  if (tag == core + "null") return ValueKind::kNull;
  return ValueKind::kString;  // "!" (quoted), !!str and unknown tags
}

std::string kind_name(ValueKind kind) {
  switch (kind) {
    case ValueKind::kNull:
      return "null";
    case ValueKind::kBool:
      return "bool";
    case ValueKind::kInt:
      return "int";
    case ValueKind::kFloat:
      return "float";
    case ValueKind::kString:
      return "string";
    case ValueKind::kList:
      return "list";
    case ValueKind::kMap:
      return "map";
  }
  return "?";
}

YAML::Node string_scalar(const std::string& text) {
  YAML::Node node(text);
  node.SetTag("!");
  return node;
}

YAML::Node null_node() { return YAML::Node(YAML::NodeType::Null); }

YAML::Node plain_scalar(const std::string& text) {
  if (infer_scalar_kind(text) == ValueKind::kNull) return null_node();
  YAML::Node node(text);
  node.SetTag("?");
  return node;
}

bool has_interpolation(const YAML::Node& node) {
  if (!node.IsDefined() || !node.IsScalar()) return false;
  const std::string& s = node.Scalar();
  for (size_t pos = s.find("${"); pos != std::string::npos; pos = s.find("${", pos + 1))
    if (pos == 0 || s[pos - 1] != '\\') return true;
  return false;
}

YAML::Node deep_copy(const YAML::Node& node) {
  if (!node.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
  return YAML::Clone(node);
}

void merge_into(YAML::Node& dst, const YAML::Node& src) {
  if (!src.IsDefined() || src.IsNull()) return;
  check_user(src.IsMap(), "cannot merge a " + kind_name(value_kind(src)) + " into a mapping");
  if (!dst.IsDefined() || dst.IsNull()) dst = YAML::Node(YAML::NodeType::Map);
  check_user(dst.IsMap(), "cannot merge a mapping into a " + kind_name(value_kind(dst)));
  for (auto it = src.begin(); it != src.end(); ++it) {
    const std::string key = it->first.Scalar();
    // A copy of the handle: `it->second` lives in a temporary proxy that `it->` returns, so a
    // reference to it dangles at the end of this statement (AddressSanitizer: use after scope).
    const YAML::Node value = it->second;
    const YAML::Node& const_dst = dst;
    YAML::Node existing = const_dst[key];
    if (existing.IsDefined() && existing.IsMap() && value.IsMap()) {
      merge_into(existing, value);
    } else {
      dst[key] = deep_copy(value);
    }
  }
}

std::vector<std::string> key_parts(const std::string& dotted_key) {
  std::vector<std::string> parts;
  if (dotted_key.empty()) return parts;
  size_t start = 0;
  while (true) {
    size_t dot = dotted_key.find('.', start);
    parts.push_back(dotted_key.substr(start, dot == std::string::npos ? dot : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

std::string join_key(const std::vector<std::string>& parts, size_t count) {
  std::string out;
  for (size_t i = 0; i < count && i < parts.size(); ++i) out += (i ? "." : "") + parts[i];
  return out;
}

YAML::Node find_node(const YAML::Node& root, const std::string& dotted_key) {
  YAML::Node current;
  current.reset(root);
  for (const auto& part : key_parts(dotted_key)) {
    YAML::Node next = child_node(current, part);
    if (!next.IsDefined()) return next;
    current.reset(next);
  }
  return current;
}

YAML::Node child_node(const YAML::Node& map, const std::string& key) {
  // yaml-cpp's const operator[] returns an *invalid* node for a missing key, and reset() or
  // assignment on an invalid node throws; hand out a valid undefined node instead.
  if (!map.IsDefined() || !map.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  YAML::Node child = map[key];
  if (!child.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
  return child;
}

YAML::Node ensure_map(YAML::Node& root, const std::string& dotted_key) {
  if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  check_user(root.IsMap(), "cannot add keys to a config that is not a mapping");
  YAML::Node current;
  current.reset(root);
  std::vector<std::string> parts = key_parts(dotted_key);
  for (size_t i = 0; i < parts.size(); ++i) {
    YAML::Node next = child_node(current, parts[i]);
    if (!next.IsDefined() || next.IsNull()) {
      current[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next.reset(child_node(current, parts[i]));
    }
    check_user(next.IsMap(), "cannot set keys under '" + join_key(parts, i + 1) + "': it is a " +
                                 kind_name(value_kind(next)) + ", not a mapping");
    current.reset(next);
  }
  return current;
}

void set_node(YAML::Node& root, const std::string& dotted_key, const YAML::Node& value) {
  std::vector<std::string> parts = key_parts(dotted_key);
  check_user(!parts.empty(), "cannot set an empty key");
  YAML::Node parent = ensure_map(root, join_key(parts, parts.size() - 1));
  parent[parts.back()] = deep_copy(value);
}

bool erase_node(YAML::Node& root, const std::string& dotted_key) {
  std::vector<std::string> parts = key_parts(dotted_key);
  if (parts.empty()) return false;
  YAML::Node parent = find_node(root, join_key(parts, parts.size() - 1));
  if (!parent.IsDefined() || !parent.IsMap()) return false;
  const YAML::Node& as_const = parent;
  if (!as_const[parts.back()].IsDefined()) return false;
  return parent.remove(parts.back());
}

namespace {
void collect_keys(const YAML::Node& node, const std::string& prefix,
                  std::vector<std::string>& out) {
  if (!node.IsMap()) return;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) continue;
    std::string key = prefix.empty() ? it->first.Scalar() : prefix + "." + it->first.Scalar();
    out.push_back(key);
    collect_keys(it->second, key, out);
  }
}
}  // namespace

std::vector<std::string> all_keys(const YAML::Node& root) {
  std::vector<std::string> out;
  collect_keys(root, "", out);
  return out;
}

}  // namespace attnlab::config
