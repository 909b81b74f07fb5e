// A scratch directory for one test, removed with everything in it at destruction. Every test
// area uses this one (tests/config and tests/trainer used to carry a copy each).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace attnlab::testing {

class TempDir {
 public:
  // A fresh directory under `base` (the system's temporary directory by default).
  explicit TempDir(const std::filesystem::path& base = std::filesystem::temp_directory_path()) {
    std::filesystem::create_directories(base);
    std::string pattern = (base / "attnlab_test_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("TempDir: cannot create a directory under " + base.string());
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  const std::string& str() const { return path_; }
  // <dir>/<name>
  std::string operator/(const std::string& name) const {
    return (std::filesystem::path(path_) / name).string();
  }
  // Writes `text` to <dir>/<relative>, creating folders.
  void write(const std::string& relative, const std::string& text) const {
    std::filesystem::path file = std::filesystem::path(path_) / relative;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << text;
  }

 private:
  std::string path_;
};

}  // namespace attnlab::testing
