// Implementation of interpolation.h: a depth-first resolver over a copy of the tree. Each key is
// resolved on first use and the chain of keys being resolved is kept, so a reference back into
// the chain is reported as a cycle ("a -> b -> a"). Everything a reference copies and all text
// it produces count against a budget (input_limits.h), so chains that double at every step
// (b: [${a}, ${a}], c: [${b}, ${b}], ...) fail instead of growing without bound.
#include "config/interpolation.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <set>
#include <vector>

#include "common/error.h"
#include "common/suggestions.h"
#include "config/input_limits.h"
#include "config/yaml_tree.h"

namespace attnlab::config {
namespace {

constexpr size_t kMaxChainLength = 64;  // keys being resolved at once

struct Piece {
  bool interpolation;  // else literal text
  std::string text;    // literal text, or the expression inside ${...}
};

class Resolver {
 public:
  explicit Resolver(const YAML::Node& config) : root_(deep_copy(config)) {}

  YAML::Node run() {
    if (root_.IsDefined()) resolve_tree(root_, "");
    return root_;
  }

 private:
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw UserError("interpolation at '" + (key.empty() ? std::string("<root>") : key) +
                    "': " + what);
  }

  static std::string child_path(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + "." + key;
  }

  void resolve_tree(YAML::Node node, const std::string& path) {
    if (node.IsMap()) {
      for (auto it = node.begin(); it != node.end(); ++it)
        resolve_tree(it->second, child_path(path, it->first.Scalar()));
    } else if (node.IsSequence()) {
      for (size_t i = 0; i < node.size(); ++i)
        resolve_tree(node[i], child_path(path, std::to_string(i)));
    } else if (needs_work(node)) {
      resolve_scalar(node, path);
    }
  }

  static bool needs_work(const YAML::Node& node) {
    return node.IsScalar() &&
           (has_interpolation(node) || node.Scalar().find("\\${") != std::string::npos);
  }

  void resolve_scalar(YAML::Node node, const std::string& path) {
    if (done_.count(path)) return;  // already resolved (its text may hold a literal "${")
    auto in_chain = std::find(chain_.begin(), chain_.end(), path);
    if (in_chain != chain_.end()) {
      std::string cycle;
      for (auto it = in_chain; it != chain_.end(); ++it) cycle += *it + " -> ";
      fail(path, "interpolation cycle: " + cycle + path);
    }
    if (chain_.size() > kMaxChainLength) fail(path, "interpolation nested too deeply");
    chain_.push_back(path);
    YAML::Node value = evaluate(node.Scalar(), path);
    chain_.pop_back();
    done_.insert(path);
    node = value;  // rebinds the tree's node to the resolved value
  }

  // Splits text into literal pieces and ${...} expressions (matching nested braces).
  std::vector<Piece> split(const std::string& s, const std::string& path) const {
    std::vector<Piece> pieces;
    std::string literal;
    size_t i = 0;
    while (i < s.size()) {
      if (s[i] == '\\' && s.compare(i + 1, 2, "${") == 0) {
        literal += "${";
        i += 3;
        continue;
      }
      if (s.compare(i, 2, "${") != 0) {
        literal += s[i++];
        continue;
      }
      size_t depth = 1, j = i + 2;
      while (j < s.size() && depth > 0) {
        if (s.compare(j, 2, "${") == 0) {
          ++depth;
          j += 2;
          continue;
        }
        if (s[j] == '}') --depth;
        ++j;
      }
      if (depth != 0) fail(path, "unterminated '${' in '" + s + "'");
      if (!literal.empty()) pieces.push_back({false, literal});
      literal.clear();
      pieces.push_back({true, s.substr(i + 2, j - i - 3)});
      i = j;
    }
    if (!literal.empty()) pieces.push_back({false, literal});
    return pieces;
  }

  YAML::Node evaluate(const std::string& text, const std::string& path) {
    std::vector<Piece> pieces = split(text, path);
    if (pieces.size() == 1 && pieces[0].interpolation) return expression(pieces[0].text, path);
    std::string out;
    for (const auto& piece : pieces) {
      if (!piece.interpolation) {
        out += piece.text;
        continue;
      }
      YAML::Node value = expression(piece.text, path);
      if (value.IsMap() || value.IsSequence())
        fail(path, "'${" + piece.text + "}' is a " + kind_name(value_kind(value)) +
                       " and cannot be part of a string");
      out += value.IsNull() ? "null" : value.Scalar();
      if (out.size() > kMaxResolvedText) charge_text(out.size(), path);
    }
    charge_text(out.size(), path);
    return string_scalar(out);
  }

  void charge_text(size_t bytes, const std::string& path) {
    produced_text_ += bytes;
    if (produced_text_ > kMaxResolvedText)
      fail(path, "interpolations produce more than " + byte_size(kMaxResolvedText) +
                     " of text (each reference repeats its target)");
  }

  // Charges a value that a reference copies to `path` (at `level`, its number of key parts):
  // its values and text, and how deep its maps/lists would nest there.
  void charge_copy(const YAML::Node& node, const std::string& path, int level) {
    if (++copied_nodes_ > kMaxComposedNodes)
      fail(path, "interpolations copy more than " + std::to_string(kMaxComposedNodes) +
                     " values (each reference copies its whole target)");
    if (node.IsScalar()) charge_text(node.Scalar().size(), path);
    if (!node.IsMap() && !node.IsSequence()) return;
    if (level + 1 > kMaxDepth)
      fail(path,
           "the interpolated value would nest more than " + std::to_string(kMaxDepth) + " levels");
    for (auto it = node.begin(); it != node.end(); ++it)
      charge_copy(node.IsMap() ? YAML::Node(it->second) : YAML::Node(*it), path, level + 1);
  }

  // Text with nested interpolations resolved (for resolver arguments and computed keys).
  std::string evaluate_text(const std::string& text, const std::string& path) {
    YAML::Node value = evaluate(text, path);
    if (value.IsMap() || value.IsSequence())
      fail(path, "'" + text + "' is a " + kind_name(value_kind(value)) + ", expected text");
    return value.IsNull() ? "null" : value.Scalar();
  }

  static std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
  }

  // Splits resolver arguments on commas outside nested ${...}.
  static std::vector<std::string> split_args(const std::string& s) {
    std::vector<std::string> args;
    std::string current;
    int depth = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s.compare(i, 2, "${") == 0) ++depth;
      if (s[i] == '}' && depth > 0) --depth;
      if (s[i] == ',' && depth == 0) {
        args.push_back(trim(current));
        current.clear();
      } else {
        current += s[i];
      }
    }
    args.push_back(trim(current));
    return args;
  }

  YAML::Node expression(const std::string& expr, const std::string& path) {
    // A resolver call is `name:args` with a dotted identifier name; anything else is a key.
    size_t colon = expr.find(':');
    bool is_call = colon != std::string::npos && colon > 0;
    for (size_t i = 0; is_call && i < colon; ++i) {
      char c = expr[i];
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) is_call = false;
    }
    if (is_call) return call(expr.substr(0, colon), expr.substr(colon + 1), path);
    return reference(evaluate_text(trim(expr), path), path);
  }

  YAML::Node call(const std::string& name, const std::string& raw_args, const std::string& path) {
    if (name == "now") {
      std::string format = raw_args.empty() ? "%Y-%m-%d_%H-%M-%S" : raw_args;
      return string_scalar(now_string(evaluate_text(format, path)));
    }
    if (name == "oc.env") {
      std::vector<std::string> args = split_args(raw_args);
      if (args.size() > 2 || args[0].empty())
        fail(path, "oc.env takes a variable name and an optional default: ${oc.env:VAR,default}");
      std::string var = evaluate_text(args[0], path);
      if (const char* value = std::getenv(var.c_str())) return plain_scalar(value);
      if (args.size() == 2) return plain_scalar(evaluate_text(args[1], path));
      fail(path, "environment variable '" + var + "' is not set and ${oc.env:" + raw_args +
                     "} has no default");
    }
    fail(path, "unknown resolver '" + name + "' (available: now, oc.env)");
  }

  // Looks `key` up (absolute, or relative with leading dots) and resolves it first.
  YAML::Node reference(const std::string& key, const std::string& path) {
    std::string target = key;
    if (!key.empty() && key[0] == '.') {
      std::vector<std::string> here = key_parts(path);
      size_t dots = key.find_first_not_of('.');
      if (dots == std::string::npos || dots > here.size())
        fail(path, "relative reference '${" + key + "}' goes above the config root");
      target = child_path(join_key(here, here.size() - dots), key.substr(dots));
    }
    if (target.empty()) fail(path, "empty interpolation '${}'");
    YAML::Node node = lookup(target);
    if (!node.IsDefined())
      fail(path, "'${" + key + "}' refers to '" + target + "', which is not in the config" +
                     did_you_mean(target, all_keys(root_)));
    resolve_tree(node, target);
    YAML::Node value = lookup(target);
    charge_copy(value, path, static_cast<int>(key_parts(path).size()));
    return deep_copy(value);
  }

  // Dotted lookup that also indexes lists (a.b.0).
  YAML::Node lookup(const std::string& key) const {
    YAML::Node current;
    current.reset(root_);
    for (const auto& part : key_parts(key)) {
      const YAML::Node& c = current;
      YAML::Node next;
      if (c.IsMap()) {
        next.reset(child_node(c, part));
      } else if (c.IsSequence() && !part.empty() &&
                 std::all_of(part.begin(), part.end(), ::isdigit) && part.size() < 9 &&
                 std::stoul(part) < c.size()) {
        next.reset(c[std::stoul(part)]);
      } else {
        return YAML::Node(YAML::NodeType::Undefined);
      }
      if (!next.IsDefined()) return next;
      current.reset(next);
    }
    return current;
  }

  YAML::Node root_;
  std::vector<std::string> chain_;
  std::set<std::string> done_;
  size_t copied_nodes_ = 0;
  size_t produced_text_ = 0;
};

}  // namespace

YAML::Node resolve_interpolations(const YAML::Node& config) { return Resolver(config).run(); }

std::string now_string(const std::string& format) {
  static const std::time_t start = std::time(nullptr);
  std::tm local{};
  localtime_r(&start, &local);
  char buffer[512];
  size_t n = std::strftime(buffer, sizeof(buffer), format.c_str(), &local);
  check_user(n > 0 || format.empty(), "${now:" + format + "}: bad or too long time format");
  return std::string(buffer, n);
}

}  // namespace attnlab::config
