// Implementation of command_options.h.
#include "cli/command_options.h"

#include <algorithm>

#include "common/error.h"

namespace attnlab {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

CommandOptions::CommandOptions(const std::string& command, const std::vector<std::string>& args,
                               const std::vector<std::string>& accepted)
    : command_(command) {
  for (const auto& arg : args) {
    auto eq = arg.find('=');
    check_user(eq != std::string::npos && eq > 0, "attnlab " + command +
                                                      ": expected key=value, got '" + arg +
                                                      "'; accepted keys: " + join(accepted));
    std::string key = arg.substr(0, eq);
    check_user(
        std::find(accepted.begin(), accepted.end(), key) != accepted.end(),
        "attnlab " + command + ": unknown option '" + key + "'; accepted keys: " + join(accepted));
    check_user(!values_.count(key), "attnlab " + command + ": option '" + key + "' given twice");
    values_[key] = arg.substr(eq + 1);
  }
}

const std::string& CommandOptions::get(const std::string& key) const {
  auto it = values_.find(key);
  check_user(it != values_.end(),
             "attnlab " + command_ + ": missing required option " + key + "=...");
  return it->second;
}

const std::string& required_option(const std::string& command, const std::string& key,
                                   const std::optional<std::string>& value) {
  check_user(value.has_value(), "attnlab " + command + ": missing required option " + key + "=...");
  return *value;
}

}  // namespace attnlab
