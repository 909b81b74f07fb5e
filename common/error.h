// UserError: the one exception type for bad user input (config keys, values, files, CLI usage).
// The CLI catches it, prints its message on one line and exits with code 2 — no stack trace —
// so every check that can be failed by a user's YAML, override or data file throws this.
#pragma once

#include <stdexcept>
#include <string>

namespace attnlab {

class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& message) : std::runtime_error(message) {}
};

// Exit code for a UserError (matches Hydra/argparse convention for usage errors).
constexpr int kUserErrorExitCode = 2;

// Throws UserError(message) when `condition` is false; a checked helper instead of ad hoc ifs.
inline void check_user(bool condition, const std::string& message) {
  if (!condition) throw UserError(message);
}

}  // namespace attnlab
