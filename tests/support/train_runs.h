// In-process training runs in tests: a fresh scratch run directory under the build tree, and a
// config composed from the shipped configs/ with a test's overrides (as `attnlab train` would).
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"

namespace attnlab::testing {

// <build>/test_train_tmp/<name>, removed if it exists.
inline std::string scratch_run_dir(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::path(ATTNLAB_BINARY_DIR) / "test_train_tmp" / name;
  std::filesystem::remove_all(dir);
  return dir.string();
}

// configs/ composed with `overrides` then `extra` (later ones win).
inline YAML::Node compose_shipped(std::vector<std::string> overrides,
                                  const std::vector<std::string>& extra = {}) {
  config::ComposeRequest request;
  request.config_dir = std::string(ATTNLAB_SOURCE_DIR) + "/configs";
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  request.overrides = std::move(overrides);
  return config::compose(request);
}

}  // namespace attnlab::testing
