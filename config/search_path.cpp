// Implementation of search_path.h.
#include "config/search_path.h"

#include <cstdlib>
#include <filesystem>
#include <set>

#include "common/error.h"

#ifndef ATTNLAB_SOURCE_DIR
#define ATTNLAB_SOURCE_DIR "."
#endif

namespace attnlab::config {
namespace fs = std::filesystem;
namespace {

bool is_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

std::string require_dir(const std::string& path, const std::string& origin) {
  check_user(is_dir(path), origin + ": config directory '" + path + "' does not exist");
  return path;
}

}  // namespace

std::vector<std::string> search_path(const std::optional<std::string>& config_dir) {
  std::vector<std::string> path;
  const char* env_dir = std::getenv("ATTNLAB_CONFIG_DIR");
  if (config_dir) {
    path.push_back(require_dir(*config_dir, "--config-dir"));
  } else if (env_dir && *env_dir) {
    path.push_back(require_dir(env_dir, "ATTNLAB_CONFIG_DIR"));
  } else if (is_dir("configs")) {
    path.push_back("configs");
  } else {
    path.push_back(require_dir(std::string(ATTNLAB_SOURCE_DIR) + "/configs", "source tree"));
  }
  if (const char* extra = std::getenv("ATTNLAB_CONFIG_PATH")) {
    std::string list = extra;
    size_t start = 0;
    while (start <= list.size()) {
      size_t colon = list.find(':', start);
      std::string dir = list.substr(start, colon == std::string::npos ? colon : colon - start);
      if (!dir.empty()) path.push_back(require_dir(dir, "ATTNLAB_CONFIG_PATH"));
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  return path;
}

std::map<std::string, std::vector<std::string>> discover_groups(
    const std::vector<std::string>& path) {
  std::map<std::string, std::set<std::string>> found;
  for (const auto& dir : path) {
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const fs::path& file = it->path();
      if (file.extension() != ".yaml" || !it->is_regular_file(ec)) continue;
      fs::path group = file.parent_path().lexically_relative(dir);
      if (group.empty() || group == ".") continue;  // top-level files are primary configs
      found[group.generic_string()].insert(file.stem().string());
    }
  }
  std::map<std::string, std::vector<std::string>> groups;
  for (auto& [group, options] : found) groups[group].assign(options.begin(), options.end());
  return groups;
}

std::optional<std::string> find_config_file(const std::vector<std::string>& path,
                                            const std::string& name) {
  for (const auto& dir : path) {
    std::string candidate = dir + "/" + name + ".yaml";
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) return candidate;
  }
  return std::nullopt;
}

}  // namespace attnlab::config
