// Test helper: exchange tensors with the float64 Python references in scripts/ref/ through
// torch.save-compatible files (torch::pickle_save / pickle_load) and run them with
// /usr/bin/python3.
#pragma once

#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

namespace attnlab::testing {

// True when /usr/bin/python3 can import torch (tests GTEST_SKIP otherwise).
inline bool python_torch_available() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
  return ok;
}

inline void save_tensors(const std::map<std::string, torch::Tensor>& tensors,
                         const std::string& path) {
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& [name, tensor] : tensors) dict.insert(name, tensor.detach().cpu().contiguous());
  std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::map<std::string, torch::Tensor> load_tensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto dict = torch::pickle_load(bytes).toGenericDict();
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : dict) out[item.key().toStringRef()] = item.value().toTensor();
  return out;
}

// A unique scratch path under the build directory.
inline std::string scratch_path(const std::string& name) {
  return std::string(ATTNLAB_BINARY_DIR) + "/test_scratch_" + name + "_" +
         std::to_string(static_cast<long>(::getpid()));
}

}  // namespace attnlab::testing
