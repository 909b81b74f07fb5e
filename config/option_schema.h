// The schema side of typed options (config/options.h binds them from the composed config): the
// checks an options struct attaches to its fields, `v("grad_clip", grad_clip(), "max global grad
// norm", config::at_least(0.0))`, and how a field is documented (OptionDoc). A check knows what it
// accepts and says so in words ("a number >= 0"), which is both the error message when a value
// fails it and the constraint `attnlab config --defaults` prints. This header has no yaml-cpp and
// no LibTorch, so the component headers that declare options structs (with TORCH_ARG fields)
// include it without seeing the config tree.
#pragma once

#include <any>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace YAML {
class Node;  // only declared: binding (config/options.h) is where the config tree is read
}

namespace attnlab::config {

// One constraint. Number checks apply to int and float fields (and to each value of a list of
// them), text checks to strings (and to each string of a list), length checks to lists. A check
// on a field it cannot apply to is a programming error (std::logic_error at the first bind).
class Check {
 public:
  enum class Applies { kNumber, kText, kLength };

  Check(Applies applies, std::string expected, std::function<bool(double)> number,
        std::function<bool(const std::string&)> text, std::function<bool(size_t)> length)
      : applies_(applies),
        expected_(std::move(expected)),
        number_(std::move(number)),
        text_(std::move(text)),
        length_(std::move(length)) {}

  Applies applies() const { return applies_; }
  // What passes, in words: "a number >= 0", "one of linear, cosine", "a list of 2 values".
  const std::string& expected() const { return expected_; }
  bool accepts_number(double value) const { return number_(value); }
  bool accepts_text(const std::string& value) const { return text_(value); }
  bool accepts_length(size_t length) const { return length_(length); }

 private:
  Applies applies_;
  std::string expected_;
  std::function<bool(double)> number_;
  std::function<bool(const std::string&)> text_;
  std::function<bool(size_t)> length_;
};

Check at_least(double bound);                  // value >= bound
Check greater_than(double bound);              // value > bound
Check at_most(double bound);                   // value <= bound
Check less_than(double bound);                 // value < bound
Check in_range(double low, double high);       // low <= value <= high
Check finite();                                // not NaN or infinite
Check one_of(std::vector<std::string> names);  // a string among `names`
Check length_is(size_t length);                // a list of exactly `length` values
Check non_empty();                             // a list of at least one value

// One option as `attnlab config --defaults` lists it (config::option_docs<Options>()).
struct OptionDoc {
  std::string key;            // dotted below the group: "betas", "grades.tau"
  std::string type;           // "float", "list of strings", "int or null"
  std::string default_value;  // "0.001", "[0.9, 0.95]", "null"
  std::string meaning;
  std::string constraints;  // "a number >= 0; a number < 1" (empty when none)
};

// How a bound group is named in messages, and the keys of the group that are not options.
struct BindScope {
  std::string owner;                  // "optim 'adamw'"; empty: the prefix
  std::vector<std::string> reserved;  // e.g. {"name"}: the registry key that chose the options
};

// One registry entry's options struct behind a type-erased interface (made by
// config::erase_options<Options>() in config/options.h, where the tree is read): bind a config
// group into the struct (returned in a std::any), list its docs, and compare a shipped config
// file with its defaults. Registries whose entries live in their own rooms hold one of these per
// entry, so adding an entry touches no shared variant.
struct ErasedOptions {
  std::function<std::any(const YAML::Node& group, const std::string& prefix,
                         const BindScope& scope)>
      bind;
  std::function<std::vector<OptionDoc>()> docs;
  std::function<std::vector<std::string>(const YAML::Node& shipped, const std::string& prefix,
                                         const BindScope& scope)>
      differing_defaults;
};

// Aligned "key  type  default  meaning (constraints)" lines, each starting with `indent`.
std::string format_option_table(const std::vector<OptionDoc>& docs, const std::string& indent);

// A number as the configs write it and a YAML reader reads it back as a float: the shortest text
// that round-trips, with a '.' or an exponent ("0.001", "1e-8", "1.0").
std::string format_float(double value);

}  // namespace attnlab::config
