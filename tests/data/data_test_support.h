// Shared helpers for the data tests: a composed-config stand-in (the data and tokenizer groups)
// whose derived files (trained tokenizers, shards) go to a per-process temporary folder, while
// downloads use the normal data cache so the corpora are fetched once per machine.
#pragma once

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace attnlab::test {

inline std::filesystem::path temp_dir() {
  static const std::filesystem::path dir = [] {
    auto path =
        std::filesystem::path(ATTNLAB_BINARY_DIR) / "test_data_tmp" / std::to_string(::getpid());
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
    return path;
  }();
  return dir;
}

// A config like the composed one: data.* and tokenizer.* plus seed.
inline YAML::Node data_config(const std::string& tokenizer = "byte", int max_documents = 12) {
  YAML::Node config;
  config["seed"] = 1337;
  config["data"]["corpus"].push_back("moby_dick");
  config["data"]["val_fraction"] = 0.25;
  config["data"]["seq_len"] = 32;
  config["data"]["batch_size"] = 4;
  config["data"]["sampler"] = "random";
  config["data"]["derived_dir"] = temp_dir().string();
  config["data"]["max_documents"] = max_documents;
  config["tokenizer"]["name"] = tokenizer;
  if (tokenizer == "bpe") config["tokenizer"]["vocab_size"] = 400;
  return config;
}

// Runs `command`, returning its stdout; sets `ok` to whether it exited with status 0.
inline std::string run_capture(const std::string& command, bool* ok) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) {
    *ok = false;
    return out;
  }
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  *ok = ::pclose(pipe) == 0;
  return out;
}

}  // namespace attnlab::test
