// Test helpers for the config engine: scratch config trees in temporary directories, scoped
// environment variables, and an EXPECT for "throws UserError whose message contains ...".
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "common/error.h"
#include "tests/support/temp_dir.h"
#include "config/config.h"

namespace attnlab::config::testing {

using ::attnlab::testing::TempDir;

// Where tests that write thousands of small files keep them: /dev/shm (memory) when it is a
// writable directory and TMPDIR is not set, else the temporary directory. On this project's
// machine the disk makes the fuzz tests' ~10,000 file writes take ~20 s; in memory, ~1 s.
inline std::filesystem::path scratch_base() {
  std::error_code ec;
  if (!getenv("TMPDIR") && std::filesystem::is_directory("/dev/shm", ec) &&
      access("/dev/shm", W_OK) == 0)
    return "/dev/shm";
  return std::filesystem::temp_directory_path();
}

// Sets (or unsets, for nullopt) an environment variable for the scope's lifetime.
class ScopedEnv {
 public:
  ScopedEnv(const std::string& name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = getenv(name.c_str())) old_ = old;
    if (value)
      setenv(name.c_str(), value->c_str(), 1);
    else
      unsetenv(name.c_str());
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_.c_str(), old_->c_str(), 1);
    else
      unsetenv(name_.c_str());
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

inline YAML::Node compose_in(const std::string& dir, const std::vector<std::string>& overrides,
                             bool resolve = true) {
  ComposeRequest request;
  request.config_dir = dir;
  request.overrides = overrides;
  request.resolve = resolve;
  return compose(request);
}

// The shipped configs/ tree of the source checkout.
inline std::string source_configs() { return std::string(ATTNLAB_SOURCE_DIR) + "/configs"; }

}  // namespace attnlab::config::testing

// Expects `statement` to throw attnlab::UserError whose message contains every listed fragment.
#define EXPECT_USER_ERROR(statement, ...)                                        \
  do {                                                                           \
    try {                                                                        \
      statement;                                                                 \
      ADD_FAILURE() << "expected UserError from: " #statement;                   \
    } catch (const attnlab::UserError& error_) {                                 \
      for (const std::string& fragment_ : {__VA_ARGS__})                         \
        EXPECT_NE(std::string(error_.what()).find(fragment_), std::string::npos) \
            << "message '" << error_.what() << "' lacks '" << fragment_ << "'";  \
    }                                                                            \
  } while (0)
