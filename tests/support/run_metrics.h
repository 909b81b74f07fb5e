// Reading a run directory's metrics.jsonl in tests that compare whole training runs (mpirun and
// Slurm tests). Tolerates a last line still being written by a running trainer.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace attnlab::testing {

inline std::vector<nlohmann::json> metric_records(const std::filesystem::path& run_dir) {
  std::vector<nlohmann::json> records;
  std::ifstream in(run_dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    try {
      records.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception&) {
      break;  // a line being written right now
    }
  }
  return records;
}

// The logged train/loss of every step that has one, in order.
inline std::vector<double> train_losses(const std::filesystem::path& run_dir) {
  std::vector<double> losses;
  for (const auto& record : metric_records(run_dir))
    if (record.contains("train/loss")) losses.push_back(record["train/loss"].get<double>());
  return losses;
}

}  // namespace attnlab::testing
