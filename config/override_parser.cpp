// Implementation of override_parser.h: a small recursive-descent parser. Values become YAML nodes:
// unquoted scalars are plain (their type is inferred from the text, YAML 1.2 core schema), quoted
// ones are strings whatever their text.
#include "config/override_parser.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <set>

#include "common/error.h"
#include "config/input_limits.h"
#include "config/yaml_tree.h"

namespace attnlab::config {
namespace {

constexpr size_t kMaxSweepItems = 100000;

bool is_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
         c == '/' || c == '@';
}

std::string trim(const std::string& s) {
  size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  size_t end = s.find_last_not_of(" \t");
  return s.substr(begin, end - begin + 1);
}

// One parsed element with the raw text it came from (sweep jobs re-use the raw text).
struct Element {
  YAML::Node node;
  std::string raw;
};

class ValueParser {
 public:
  ValueParser(const std::string& text, const std::string& override_text)
      : s_(text), override_(override_text) {}

  // value := element (',' element)*  |  sweep_function
  Override parse_top(Override o) {
    if (trim(s_).empty()) {
      o.value = string_scalar("");  // Hydra: `key=` sets the empty string
      return o;
    }
    std::vector<Element> elements;
    while (true) {
      skip_ws();
      size_t start = pos_;
      if (elements.empty() && at_function()) {
        parse_function(o);
        skip_ws();
        if (pos_ != s_.size()) fail("unexpected text after " + o.sweep.function + "(...)");
        return o;
      }
      Element e;
      e.node = parse_element(Context::kTop);
      e.raw = trim(s_.substr(start, pos_ - start));
      elements.push_back(e);
      skip_ws();
      if (pos_ == s_.size()) break;
      if (s_[pos_] != ',') fail("unexpected '" + std::string(1, s_[pos_]) + "'");
      ++pos_;
    }
    if (elements.size() == 1) {
      o.value = elements[0].node;
    } else {
      o.sweep.kind = SweepSpec::Kind::kChoices;
      for (const auto& e : elements) o.sweep.items.push_back(e.raw);
    }
    return o;
  }

  YAML::Node parse_single() {
    skip_ws();
    if (pos_ == s_.size()) return string_scalar("");
    YAML::Node node = parse_element(Context::kTop);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected '" + std::string(1, s_[pos_]) + "'");
    return node;
  }

 private:
  enum class Context { kTop, kList, kDictKey, kDictValue, kArgs };

  [[noreturn]] void fail(const std::string& what) const {
    throw UserError("cannot parse override '" + override_ + "': " + what + " at position " +
                    std::to_string(pos_) + " of the value '" + s_ + "'");
  }

  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }

  bool at_function() const {
    static const std::set<std::string> kFunctions = {"range", "choice", "zip", "glob"};
    size_t i = pos_;
    while (i < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i])) || s_[i] == '_')) ++i;
    return i < s_.size() && s_[i] == '(' && kFunctions.count(s_.substr(pos_, i - pos_));
  }

  YAML::Node parse_element(Context context) {
    // Nesting and size are bounded so a hostile "[[[[..." fails cleanly instead of exhausting
    // the stack, and "{a0: 1, a1: 1, ...}" instead of running a quadratic duplicate check.
    struct DepthGuard {
      int& depth;
      explicit DepthGuard(int& d) : depth(++d) {}
      ~DepthGuard() { --depth; }
    } guard(depth_);
    if (depth_ > kMaxDepth) fail("values nest more than " + std::to_string(kMaxDepth) + " levels");
    if (++nodes_ > kMaxNodes)
      fail("the value has more than " + std::to_string(kMaxNodes) + " items");
    skip_ws();
    if (pos_ >= s_.size()) fail("missing value");
    char c = s_[pos_];
    if (c == '[') return parse_list();
    if (c == '{') return parse_dict();
    if (c == '\'' || c == '"') return string_scalar(parse_quoted());
    if (at_function()) fail("sweep functions (range/choice/zip/glob) must be the whole value");
    return plain_scalar(parse_primitive(context));
  }

  // Quoted text: \<quote> and \\ are the characters; every other backslash stays as typed
  // (so "\n\n" is the four characters \n\n, as it is unquoted; see override_parser.h).
  std::string parse_quoted() {
    char quote = s_[pos_++];
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size() &&
          (s_[pos_ + 1] == quote || s_[pos_ + 1] == '\\'))
        ++pos_;
      out += s_[pos_++];
    }
    if (pos_ >= s_.size()) fail(std::string("unterminated ") + quote + "quoted string");
    ++pos_;
    return out;
  }

  // Unquoted text up to a delimiter of the context; ${...} interpolations are kept whole.
  // "\," style escapes of punctuation produce the character; a backslash before a letter or
  // digit (\n, \t, \r, \s, \1 ...) stays as typed, as in quoted values, for the keys that read
  // escapes themselves (data.separator, regular expressions).
  std::string parse_primitive(Context context) {
    std::string out;
    int interpolation_depth = 0;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '\\' && pos_ + 1 < s_.size()) {
        char next = s_[pos_ + 1];
        // keep "\${" so interpolation sees the escape, and "\n" for the key's reader
        if (next == '$' || std::isalnum(static_cast<unsigned char>(next))) out += '\\';
        out += next;
        pos_ += 2;
        continue;
      }
      if (c == '$' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '{') {
        ++interpolation_depth;
        out += "${";
        pos_ += 2;
        continue;
      }
      if (interpolation_depth > 0) {
        if (c == '}') --interpolation_depth;
        out += c;
        ++pos_;
        continue;
      }
      bool stop = c == ',' || (context != Context::kTop && (c == ']' || c == '}')) ||
                  (context == Context::kDictKey && c == ':') ||
                  (context == Context::kArgs && (c == ')' || c == '='));
      if (stop) break;
      if (c == '[' || c == ']' || c == '{' || c == '}' || c == '(' || c == ')') {
        if (!(context == Context::kTop && (c == '(' || c == ')')))
          fail(std::string("unexpected '") + c + "' (quote the value to use it literally)");
      }
      out += c;
      ++pos_;
    }
    if (interpolation_depth > 0) fail("unterminated '${' interpolation");
    std::string text = trim(out);
    if (text.empty() && context != Context::kTop) fail("empty item");
    return text;
  }

  YAML::Node parse_list() {
    ++pos_;  // '['
    YAML::Node list(YAML::NodeType::Sequence);
    list.SetStyle(YAML::EmitterStyle::Flow);
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return list;
    }
    while (true) {
      list.push_back(parse_element(Context::kList));
      skip_ws();
      if (pos_ >= s_.size()) fail("missing ']'");
      if (s_[pos_] == ']') break;
      if (s_[pos_] != ',') fail("expected ',' or ']'");
      ++pos_;
    }
    ++pos_;
    return list;
  }

  YAML::Node parse_dict() {
    ++pos_;  // '{'
    YAML::Node dict(YAML::NodeType::Map);
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return dict;
    }
    while (true) {
      skip_ws();
      if (pos_ >= s_.size()) fail("missing '}'");
      std::string key = (s_[pos_] == '\'' || s_[pos_] == '"') ? parse_quoted()
                                                              : parse_primitive(Context::kDictKey);
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') fail("expected ':' after map key '" + key + "'");
      ++pos_;
      if (key.size() > kMaxKeyLength)
        fail("a map key of " + std::to_string(key.size()) + " bytes (the limit is " +
             std::to_string(kMaxKeyLength) + ")");
      if (dict.size() >= kMaxMapEntries)
        fail("a map with more than " + std::to_string(kMaxMapEntries) + " keys");
      const YAML::Node& as_const = dict;
      if (as_const[key].IsDefined()) fail("duplicate map key '" + key + "'");
      dict[key] = parse_element(Context::kDictValue);
      skip_ws();
      if (pos_ >= s_.size()) fail("missing '}'");
      if (s_[pos_] == '}') break;
      if (s_[pos_] != ',') fail("expected ',' or '}'");
      ++pos_;
    }
    ++pos_;
    return dict;
  }

  // function(args): positional args and name=value keyword args, each with its raw text.
  struct Arg {
    std::string name;
    Element value;
  };
  std::vector<Arg> parse_args() {
    std::vector<Arg> args;
    ++pos_;  // '('
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ')') {
      ++pos_;
      return args;
    }
    while (true) {
      skip_ws();
      Arg arg;
      size_t name_end = pos_;
      while (name_end < s_.size() &&
             (std::isalnum(static_cast<unsigned char>(s_[name_end])) || s_[name_end] == '_'))
        ++name_end;
      if (name_end > pos_ && name_end < s_.size() && s_[name_end] == '=') {
        arg.name = s_.substr(pos_, name_end - pos_);
        pos_ = name_end + 1;
      }
      skip_ws();
      size_t start = pos_;
      if (pos_ >= s_.size()) fail("missing ')'");
      char c = s_[pos_];
      if (c == '[') {
        arg.value.node = parse_list();
      } else if (c == '\'' || c == '"') {
        arg.value.node = string_scalar(parse_quoted());
      } else {
        arg.value.node = plain_scalar(parse_primitive(Context::kArgs));
      }
      arg.value.raw = trim(s_.substr(start, pos_ - start));
      args.push_back(arg);
      skip_ws();
      if (pos_ >= s_.size()) fail("missing ')'");
      if (s_[pos_] == ')') break;
      if (s_[pos_] != ',') fail("expected ',' or ')'");
      ++pos_;
    }
    ++pos_;
    return args;
  }

  double number_arg(const Arg& arg, bool& is_int) {
    ValueKind kind = value_kind(arg.value.node);
    if (kind != ValueKind::kInt && kind != ValueKind::kFloat)
      fail("range() takes numbers, got '" + arg.value.raw + "'");
    if (kind == ValueKind::kFloat) is_int = false;
    try {
      return std::stod(arg.value.node.Scalar());
    } catch (const std::exception&) {
      fail("range() number out of range: '" + arg.value.raw + "'");
    }
  }

  static std::string format_number(double v, bool is_int) {
    char buffer[64];
    if (is_int) {
      std::snprintf(buffer, sizeof(buffer), "%lld", static_cast<long long>(v));
      return buffer;
    }
    std::snprintf(buffer, sizeof(buffer), "%.12g", v);
    std::string text = buffer;
    if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
    return text;
  }

  void parse_range(const std::vector<Arg>& args, SweepSpec& sweep) {
    if (args.empty() || args.size() > 3)
      fail("range() takes (stop), (start, stop) or (start, stop, step)");
    for (const auto& a : args)
      if (!a.name.empty()) fail("range() takes positional arguments only");
    bool is_int = true;
    std::vector<double> v;
    for (const auto& a : args) v.push_back(number_arg(a, is_int));
    double start = args.size() == 1 ? 0.0 : v[0];
    double stop = args.size() == 1 ? v[0] : v[1];
    double step = args.size() == 3 ? v[2] : 1.0;
    if (step == 0.0 || !std::isfinite(step) || !std::isfinite(start) || !std::isfinite(stop))
      fail("range() needs finite numbers and a non-zero step");
    double count = std::ceil((stop - start) / step - 1e-9);
    if (count <= 0) fail("range() is empty");
    if (count > kMaxSweepItems) fail("range() has too many values");
    sweep.kind = SweepSpec::Kind::kChoices;
    for (long long i = 0; i < static_cast<long long>(count); ++i)
      sweep.items.push_back(format_number(start + static_cast<double>(i) * step, is_int));
  }

  static std::vector<std::string> pattern_list(const YAML::Node& node) {
    std::vector<std::string> out;
    if (node.IsSequence()) {
      for (const auto& item : node) out.push_back(item.IsScalar() ? item.Scalar() : "");
    } else if (node.IsScalar()) {
      out.push_back(node.Scalar());
    }
    return out;
  }

  void parse_function(Override& o) {
    size_t name_end = s_.find('(', pos_);
    std::string name = s_.substr(pos_, name_end - pos_);
    pos_ = name_end;
    std::vector<Arg> args = parse_args();
    o.sweep.function = name;
    if (name == "range") {
      parse_range(args, o.sweep);
    } else if (name == "choice" || name == "zip") {
      if (args.empty()) fail(name + "() needs at least one value");
      o.sweep.kind = SweepSpec::Kind::kChoices;
      for (const auto& a : args) {
        if (!a.name.empty()) fail(name + "() takes positional arguments only");
        o.sweep.items.push_back(a.value.raw);
      }
    } else {  // glob
      o.sweep.kind = SweepSpec::Kind::kGlob;
      for (const auto& a : args) {
        std::vector<std::string> patterns = pattern_list(a.value.node);
        if (a.name.empty() || a.name == "include") {
          o.sweep.include.insert(o.sweep.include.end(), patterns.begin(), patterns.end());
        } else if (a.name == "exclude") {
          o.sweep.exclude.insert(o.sweep.exclude.end(), patterns.begin(), patterns.end());
        } else {
          fail("glob() takes a pattern, include= and exclude=, not '" + a.name + "'");
        }
      }
      if (o.sweep.include.empty()) fail("glob() needs a pattern, e.g. glob(*)");
    }
  }

  const std::string& s_;
  const std::string& override_;
  size_t pos_ = 0;
  int depth_ = 0;
  size_t nodes_ = 0;
};

}  // namespace

std::string op_prefix(OverrideOp op) {
  switch (op) {
    case OverrideOp::kSet:
      return "";
    case OverrideOp::kAdd:
      return "+";
    case OverrideOp::kForceAdd:
      return "++";
    case OverrideOp::kDelete:
      return "~";
  }
  return "";
}

Override parse_override(const std::string& text) {
  Override o;
  check_user(text.size() <= kMaxDocumentBytes,
             "cannot parse override '" + preview(text) + "': " + std::to_string(text.size()) +
                 " bytes; an override is limited to " + byte_size(kMaxDocumentBytes));
  o.text = text;
  size_t pos = 0;
  if (text.rfind("++", 0) == 0) {
    o.op = OverrideOp::kForceAdd;
    pos = 2;
  } else if (!text.empty() && text[0] == '+') {
    o.op = OverrideOp::kAdd;
    pos = 1;
  } else if (!text.empty() && text[0] == '~') {
    o.op = OverrideOp::kDelete;
    pos = 1;
  }
  size_t eq = text.find('=', pos);
  o.key = text.substr(pos, eq == std::string::npos ? std::string::npos : eq - pos);
  check_key_path(o.key, "cannot parse override '" + preview(text) + "'");
  auto bad = [&](const std::string& why) {
    throw UserError("cannot parse override '" + text + "': " + why +
                    " (expected key=value, +key=value, ++key=value, ~key or group=option)");
  };
  if (o.key.empty()) bad("missing key");
  for (char c : o.key)
    if (!is_key_char(c)) bad(std::string("invalid character '") + c + "' in key '" + o.key + "'");
  if (o.key.front() == '.' || o.key.back() == '.' || o.key.find("..") != std::string::npos ||
      o.key.front() == '/' || o.key.back() == '/' || o.key.find("//") != std::string::npos)
    bad("malformed key '" + o.key + "'");
  if (eq == std::string::npos) {
    if (o.op != OverrideOp::kDelete) bad("missing '='");
    return o;
  }
  o.has_value = true;
  o.value_text = text.substr(eq + 1);
  ValueParser parser(o.value_text, text);
  o = parser.parse_top(o);
  if (o.op == OverrideOp::kDelete && o.is_sweep()) bad("a delete (~key=value) cannot sweep");
  return o;
}

void reject_sweep(const Override& o) {
  if (!o.is_sweep()) return;
  throw UserError("ambiguous value for override '" + o.text + "': to use a list write " + o.key +
                  "=[a,b]; to use a string quote it: " + o.key +
                  "='a,b'; to sweep over the values add --multirun (-m)");
}

YAML::Node parse_override_value(const std::string& text) {
  ValueParser parser(text, text);
  return parser.parse_single();
}

}  // namespace attnlab::config
