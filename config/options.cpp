// The non-template parts of config/options.h and config/option_schema.h: the checks, how values
// print and encode, the one-line errors, and the --defaults table.
#include "config/options.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/suggestions.h"
#include "config/yaml_tree.h"

namespace attnlab::config {

std::string format_float(double value) {
  if (std::isnan(value)) return ".nan";
  if (std::isinf(value)) return value > 0 ? ".inf" : "-.inf";
  // The shortest %g text that reads back as the same double.
  char text[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof(text), "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  std::string out = text;
  // "1e-08" -> "1e-8", "1e+20" -> "1e20": the exponent as the configs write it.
  const size_t e = out.find('e');
  if (e != std::string::npos) {
    std::string mantissa = out.substr(0, e), exponent = out.substr(e + 1);
    const bool negative = exponent[0] == '-';
    exponent = exponent.substr(exponent[0] == '-' || exponent[0] == '+' ? 1 : 0);
    exponent.erase(0, std::min(exponent.find_first_not_of('0'), exponent.size() - 1));
    return mantissa + "e" + (negative ? "-" : "") + exponent;
  }
  if (out.find('.') == std::string::npos) out += ".0";  // stays a float when read back
  return out;
}

namespace {

Check number_check(std::string expected, std::function<bool(double)> accepts) {
  return Check(Check::Applies::kNumber, std::move(expected), std::move(accepts), nullptr, nullptr);
}

// A bound as the message shows it: integers without ".0" ("a number >= 0").
std::string bound_text(double bound) {
  if (std::floor(bound) == bound && std::fabs(bound) < 1e15)
    return std::to_string(static_cast<long long>(bound));
  return format_float(bound);
}

}  // namespace

Check at_least(double bound) {
  return number_check("a number >= " + bound_text(bound), [bound](double v) { return v >= bound; });
}

Check greater_than(double bound) {
  return number_check("a number > " + bound_text(bound), [bound](double v) { return v > bound; });
}

Check at_most(double bound) {
  return number_check("a number <= " + bound_text(bound), [bound](double v) { return v <= bound; });
}

Check less_than(double bound) {
  return number_check("a number < " + bound_text(bound), [bound](double v) { return v < bound; });
}

Check in_range(double low, double high) {
  return number_check("a number in [" + bound_text(low) + ", " + bound_text(high) + "]",
                      [low, high](double v) { return v >= low && v <= high; });
}

Check finite() {
  return number_check("a finite number", [](double v) { return std::isfinite(v); });
}

Check one_of(std::vector<std::string> names) {
  std::string expected = "one of " + join_names(names);
  return Check(
      Check::Applies::kText, std::move(expected), nullptr,
      [names](const std::string& v) {
        return std::find(names.begin(), names.end(), v) != names.end();
      },
      nullptr);
}

Check length_is(size_t length) {
  return Check(Check::Applies::kLength,
               "a list of " + std::to_string(length) + " value" + (length == 1 ? "" : "s"), nullptr,
               nullptr, [length](size_t n) { return n == length; });
}

Check non_empty() {
  return Check(Check::Applies::kLength, "a list of at least one value", nullptr, nullptr,
               [](size_t n) { return n > 0; });
}

std::string format_option_table(const std::vector<OptionDoc>& docs, const std::string& indent) {
  size_t key_width = 0, type_width = 0, default_width = 0;
  for (const auto& doc : docs) {
    key_width = std::max(key_width, doc.key.size());
    type_width = std::max(type_width, doc.type.size());
    default_width = std::max(default_width, doc.default_value.size());
  }
  auto pad = [](const std::string& s, size_t width) {
    return s + std::string(width - s.size() + 2, ' ');
  };
  std::string out;
  for (const auto& doc : docs) {
    out += indent + pad(doc.key, key_width) + pad(doc.type, type_width) +
           pad(doc.default_value, default_width) + doc.meaning;
    if (!doc.constraints.empty()) out += " (" + doc.constraints + ")";
    out += "\n";
  }
  return out;
}

namespace detail {

std::string join_key(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

YAML::Node encode_value(bool value) { return plain_scalar(value ? "true" : "false"); }
YAML::Node encode_value(int64_t value) { return plain_scalar(std::to_string(value)); }
YAML::Node encode_value(double value) { return plain_scalar(format_float(value)); }
YAML::Node encode_value(const std::string& value) { return string_scalar(value); }

std::string format_value(bool value) { return value ? "true" : "false"; }
std::string format_value(int64_t value) { return std::to_string(value); }
std::string format_value(double value) { return format_float(value); }
// Plain text, or double-quoted with C escapes when it is empty or holds a control character
// (trainer.sample.prompt's "\n"), so a listing line stays one line and shows what the value is.
std::string format_value(const std::string& value) {
  bool plain = !value.empty();
  for (unsigned char c : value) plain = plain && c >= 0x20;
  if (plain) return value;
  std::string out = "\"";
  for (unsigned char c : value) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '"' || c == '\\')
      out += std::string("\\") + static_cast<char>(c);
    else if (c < 0x20) {
      char code[8];
      std::snprintf(code, sizeof(code), "\\x%02x", c);
      out += code;
    } else
      out += static_cast<char>(c);
  }
  return out + "\"";
}

void wrong_type(const std::string& key, const std::string& type, const YAML::Node& value) {
  const std::string got = value.IsNull() ? "null" : "'" + shown_value(value) + "'";
  throw UserError(key + ": expected " + type + ", got " + got);
}

void unknown_option(const std::string& key, const std::string& option, const std::string& owner,
                    const std::vector<std::string>& options) {
  throw UserError(key + ": " + owner + " has no option '" + option +
                  "'; its options: " + join_names(options) + did_you_mean(option, options));
}

void not_a_map(const std::string& key, const YAML::Node& value) {
  throw UserError(key + ": expected a map of options, got '" + shown_value(value) + "'");
}

void check_does_not_apply(const Check& check, const std::string& key) {
  throw std::logic_error("options of " + key + ": the check '" + check.expected() +
                         "' does not apply to its type");
}

void check_number(const Check& check, double value, const std::string& key) {
  if (check.applies() != Check::Applies::kNumber) check_does_not_apply(check, key);
  if (!check.accepts_number(value))
    throw UserError(key + ": expected " + check.expected() + ", got " + bound_text(value));
}

void check_text(const Check& check, const std::string& value, const std::string& key) {
  if (check.applies() != Check::Applies::kText) check_does_not_apply(check, key);
  if (!check.accepts_text(value))
    throw UserError(key + ": expected " + check.expected() + ", got '" + value + "'");
}

void check_length(const Check& check, size_t length, const std::string& key,
                  const std::string& shown) {
  if (check.applies() != Check::Applies::kLength) check_does_not_apply(check, key);
  if (!check.accepts_length(length))
    throw UserError(key + ": expected " + check.expected() + ", got " + shown);
}

}  // namespace detail
}  // namespace attnlab::config
