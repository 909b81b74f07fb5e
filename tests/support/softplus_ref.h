// Test helper: exchange tensors with the float64 Python references in scripts/ref/ through
// torch.save-compatible files (torch::pickle_save / pickle_load) and run them with
// the project Python (tests/support/python.h).
#pragma once

#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "io/weights_io.h"
#include "tests/support/python.h"

namespace attnlab::testing {

inline void save_tensors(const std::map<std::string, torch::Tensor>& tensors,
                         const std::string& path) {
  std::map<std::string, torch::Tensor> contiguous;
  for (const auto& [name, tensor] : tensors) contiguous[name] = tensor.detach().cpu().contiguous();
  std::vector<char> bytes = attnlab::torch_save_bytes(contiguous);
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
