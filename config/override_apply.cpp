// Implementation of override_apply.h.
#include "config/override_apply.h"

#include "common/error.h"
#include "common/suggestions.h"
#include "config/input_limits.h"
#include "config/moved_keys.h"
#include "config/yaml_tree.h"

namespace attnlab::config {
namespace {

// A value for an error message, on one line (an error is one line): flow-style YAML with line
// breaks written as \n, cut to its first 100 bytes when long.
std::string shown(const YAML::Node& node) {
  std::string text;
  if (node.IsScalar()) {
    text = node.Scalar();
  } else {
    YAML::Emitter out;
    out.SetMapFormat(YAML::Flow);
    out.SetSeqFormat(YAML::Flow);
    out << node;
    text = out.c_str();
  }
  std::string one_line;
  for (char c : text) one_line += c == '\n' ? std::string("\\n") : std::string(1, c);
  return preview(one_line);
}

// "key 'model.d_modle' not found: 'model' has no key 'd_modle' (its keys: ...) (did you mean
// model.d_model?)" — where the lookup stopped, what is there, and the closest full key.
[[noreturn]] void missing_key(const YAML::Node& root, const Override& o,
                              const std::string& action) {
  std::vector<std::string> parts = key_parts(o.key);
  size_t depth = 0;
  YAML::Node parent = root;
  while (depth + 1 < parts.size()) {
    YAML::Node next = find_node(root, join_key(parts, depth + 1));
    if (!next.IsDefined() || !next.IsMap()) break;
    parent.reset(next);
    ++depth;
  }
  std::string where = depth == 0 ? "the top level" : "'" + join_key(parts, depth) + "'";
  std::string message =
      "cannot " + action + " '" + o.text + "': key '" + o.key + "' is not in the config";
  YAML::Node blocker = find_node(root, join_key(parts, depth + 1));
  if (depth + 1 < parts.size() && blocker.IsDefined()) {
    message += " ('" + join_key(parts, depth + 1) + "' is a " + kind_name(value_kind(blocker)) +
               ", not a mapping)";
  } else {
    std::vector<std::string> keys;
    if (parent.IsMap())
      for (auto it = parent.begin(); it != parent.end(); ++it) keys.push_back(it->first.Scalar());
    message += "; expected under " + where + ", which has: " + join_names(keys);
  }
  message += did_you_mean(o.key, all_keys(root));
  if (o.op == OverrideOp::kSet) message += ". To add a new key use +" + o.key + "=...";
  throw UserError(message);
}

}  // namespace

std::optional<YAML::Node> value_for_default(const YAML::Node& existing, const YAML::Node& value) {
  if (has_interpolation(existing) || has_interpolation(value)) return value;
  ValueKind old_kind = value_kind(existing), new_kind = value_kind(value);
  if (old_kind == ValueKind::kNull || new_kind == ValueKind::kNull || old_kind == new_kind)
    return value;
  if (old_kind == ValueKind::kFloat && new_kind == ValueKind::kInt) {
    std::string text = value.Scalar();
    bool decimal = text.find_first_of("xo") == std::string::npos;
    return decimal ? plain_scalar(text + ".0") : value;  // keep the float type in the saved config
  }
  bool scalar_new =
      new_kind == ValueKind::kInt || new_kind == ValueKind::kFloat || new_kind == ValueKind::kBool;
  if (old_kind == ValueKind::kString && scalar_new) return string_scalar(value.Scalar());
  return std::nullopt;
}

std::string shown_value(const YAML::Node& node) { return shown(node); }

namespace {

// The value to store for `key=value` given the existing default, or a UserError.
YAML::Node checked_value(const YAML::Node& existing, const YAML::Node& value, const Override& o) {
  if (std::optional<YAML::Node> stored = value_for_default(existing, value)) return *stored;
  throw UserError("cannot set '" + o.key + "' to '" + shown(value) + "': expected " +
                  kind_name(value_kind(existing)) + " like the default '" + shown(existing) +
                  "', got " + kind_name(value_kind(value)) + " (use ++" + o.key + "=... to force)");
}

}  // namespace

bool same_value(const YAML::Node& a, const YAML::Node& b) {
  ValueKind ka = value_kind(a), kb = value_kind(b);
  if (ka == ValueKind::kNull || kb == ValueKind::kNull) return ka == kb;
  if (a.IsScalar() && b.IsScalar()) return a.Scalar() == b.Scalar();
  if (a.IsSequence() && b.IsSequence()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!same_value(a[i], b[i])) return false;
    return true;
  }
  if (a.IsMap() && b.IsMap()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      YAML::Node other = b[it->first.Scalar()];
      if (!other.IsDefined() || !same_value(it->second, other)) return false;
    }
    return true;
  }
  return false;
}

void apply_key_override(YAML::Node& root, const Override& o) {
  // An old key (moved_keys.h) names its new place instead of "not in the config".
  if (const MovedKey* moved = find_moved_key(o.key))
    throw UserError("cannot apply '" + o.text +
                    "': " + moved_key_message(*moved, o.has_value ? o.value_text : ""));
  check_user(o.key.find('/') == std::string::npos && o.key.find('@') == std::string::npos,
             "cannot apply '" + o.text + "': '" + o.key +
                 "' is not a config group here, and config keys use dots (a.b), not '/' or '@'");
  reject_sweep(o);
  YAML::Node existing = find_node(root, o.key);
  switch (o.op) {
    case OverrideOp::kSet:
      if (!existing.IsDefined()) missing_key(root, o, "set");
      set_node(root, o.key, checked_value(existing, o.value, o));
      return;
    case OverrideOp::kAdd:
      check_user(!existing.IsDefined(), "cannot add '" + o.text + "': key '" + o.key +
                                            "' already exists with value '" + shown(existing) +
                                            "'; use " + o.key + "=... to change it or ++" + o.key +
                                            "=... to add or set");
      set_node(root, o.key, o.value);
      return;
    case OverrideOp::kForceAdd:
      set_node(root, o.key, o.value);
      return;
    case OverrideOp::kDelete:
      if (!existing.IsDefined()) missing_key(root, o, "delete");
      check_user(!o.has_value || same_value(existing, o.value),
                 "cannot delete '" + o.text + "': '" + o.key + "' is '" + shown(existing) +
                     "', not '" + shown(o.value) + "'");
      erase_node(root, o.key);
      return;
  }
}

}  // namespace attnlab::config
