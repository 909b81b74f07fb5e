// Test helper: runs a scripts/ref/loss_*.py reference with the project Python on JSON cases and
// converts tensors to/from the JSON layout of scripts/ref/loss_common.py.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/python.h"

namespace attnlab::test {

inline nlohmann::json to_json(const torch::Tensor& t) {
  torch::Tensor flat = t.detach().contiguous().reshape({-1});
  nlohmann::json j;
  j["shape"] = t.sizes().vec();
  if (t.scalar_type() == torch::kBool) {
    j["dtype"] = "bool";
    std::vector<bool> data;
    for (int64_t i = 0; i < flat.numel(); ++i) data.push_back(flat[i].item<bool>());
    j["data"] = data;
  } else if (torch::isFloatingType(t.scalar_type())) {
    j["dtype"] = "float64";
    torch::Tensor d = flat.to(torch::kDouble);
    j["data"] = std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
  } else {
    j["dtype"] = "int64";
    torch::Tensor d = flat.to(torch::kLong);
    j["data"] = std::vector<int64_t>(d.data_ptr<int64_t>(), d.data_ptr<int64_t>() + d.numel());
  }
  return j;
}

inline torch::Tensor from_json(const nlohmann::json& j) {
  std::vector<int64_t> shape = j["shape"].get<std::vector<int64_t>>();
  if (j["dtype"] == "int64")
    return torch::tensor(j["data"].get<std::vector<int64_t>>(), torch::kLong).reshape(shape);
  return torch::tensor(j["data"].get<std::vector<double>>(), torch::kDouble).reshape(shape);
}

// Runs scripts/ref/<script> on {"cases": cases}; returns the "results" array.
inline nlohmann::json run_reference(const std::string& script, const nlohmann::json& cases) {
  const std::string dir = std::string(ATTNLAB_BINARY_DIR) + "/";
  const std::string in = dir + "ref_" + script + ".in.json";
  const std::string out = dir + "ref_" + script + ".out.json";
  std::ofstream(in) << nlohmann::json{{"cases", cases}}.dump();
  const std::string command = "cd " + std::string(ATTNLAB_SOURCE_DIR) + "/scripts/ref && '" +
                              ::attnlab::testing::project_python() + "' " + script + " " + in +
                              " " + out;
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream stream(out);
  nlohmann::json answer = nlohmann::json::parse(stream);
  return answer["results"];
}

}  // namespace attnlab::test
