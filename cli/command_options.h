// `key=value` arguments of the non-training commands (export, plot, ...): parsed into a map, with
// unknown keys and malformed arguments rejected by a UserError that lists the accepted keys.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace attnlab {

class CommandOptions {
 public:
  // `command` names the command in error messages; `accepted` are the allowed keys.
  CommandOptions(const std::string& command, const std::vector<std::string>& args,
                 const std::vector<std::string>& accepted);

  bool has(const std::string& key) const { return values_.count(key) > 0; }
  // The value of a required key (UserError "attnlab <command>: missing <key>=...").
  const std::string& get(const std::string& key) const;
  std::string get_or(const std::string& key, const std::string& fallback) const;
  const std::map<std::string, std::string>& values() const { return values_; }

 private:
  std::string command_;
  std::map<std::string, std::string> values_;
};

}  // namespace attnlab
