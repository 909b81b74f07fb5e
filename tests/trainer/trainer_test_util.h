// Shared fixtures for the trainer-infrastructure tests: a fresh temp directory per test, a tiny
// module whose parameter names look like model=gpt's, and the project Python.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/support/python.h"
#include "tests/support/temp_dir.h"
#include "cli/command.h"

namespace attnlab::testing {

struct TinyBlockImpl : torch::nn::Module {
  TinyBlockImpl() {
    fc = register_module("fc", torch::nn::Linear(4, 4));
    norm = register_parameter("norm", torch::ones({4}));
  }
  torch::nn::Linear fc{nullptr};
  torch::Tensor norm;
};
TORCH_MODULE(TinyBlock);

// Parameters: embed.weight [10,4], blocks.{0,1}.fc.{weight,bias}, blocks.{0,1}.norm,
// final_norm.{weight,bias} [4]; buffer: step_buffer [2].
struct TinyModelImpl : torch::nn::Module {
  TinyModelImpl() {
    embed = register_module("embed", torch::nn::Embedding(10, 4));
    blocks = register_module("blocks", torch::nn::ModuleList(TinyBlock(), TinyBlock()));
    final_norm =
        register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({4})));
    buffer = register_buffer("step_buffer", torch::zeros({2}));
  }
  torch::Tensor forward(const torch::Tensor& tokens) {
    auto x = embed(tokens);
    for (const auto& block : *blocks) {
      auto b = block->as<TinyBlockImpl>();
      x = x + torch::tanh(b->fc(x)) * b->norm;
    }
    return final_norm(x).sum();
  }
  torch::nn::Embedding embed{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm final_norm{nullptr};
  torch::Tensor buffer;
};
TORCH_MODULE(TinyModel);

inline std::string source_dir() { return ATTNLAB_SOURCE_DIR; }

// Runs `attnlab <name> <overrides>` with its stdout swallowed; the capture is released even when
// the command throws, so a failing command cannot hide the rest of the test log.
inline int run_command_quietly(const std::string& name, const std::vector<std::string>& overrides) {
  CommandArgs args;
  args.overrides = overrides;
  ::testing::internal::CaptureStdout();
  try {
    int rc = command_registry().get(name).run(args);
    ::testing::internal::GetCapturedStdout();
    return rc;
  } catch (...) {
    ::testing::internal::GetCapturedStdout();
    throw;
  }
}

}  // namespace attnlab::testing
