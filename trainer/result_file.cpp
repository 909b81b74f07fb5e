// See result_file.h.
#include "trainer/result_file.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "io/atomic_file.h"

namespace attnlab {

std::string result_file_path(const std::string& run_dir) {
  return (std::filesystem::path(run_dir) / "result.json").string();
}

void write_result_file(const std::string& run_dir, const TrainSummary& s) {
  nlohmann::json out = {{"task", s.task},
                        {"run_dir", s.run_dir},
                        {"step", s.step},
                        {"train_loss", s.train_loss},
                        {"val_loss", s.val_loss},
                        {"tokens_per_s", s.tokens_per_second},
                        {"examples_per_s", s.examples_per_second},
                        {"parameters", s.parameters},
                        {"non_embedding_parameters", s.non_embedding_parameters}};
  for (const auto& [key, value] : s.results) out[key] = value;
  write_file_atomic(result_file_path(run_dir), out.dump(2) + "\n");
}

std::optional<TrainSummary> read_result_file(const std::string& run_dir, const std::string& task) {
  const std::string path = result_file_path(run_dir);
  if (!std::filesystem::exists(path)) return std::nullopt;
  try {
    const nlohmann::json result = nlohmann::json::parse(read_file_bytes(path));
    TrainSummary done;
    done.task = task;
    done.step = result.at("step").get<int64_t>();
    done.train_loss = result.at("train_loss").get<double>();
    done.val_loss = result.at("val_loss").get<double>();
    done.tokens_per_second = result.at("tokens_per_s").get<double>();
    done.examples_per_second = result.value("examples_per_s", 0.0);
    done.parameters = result.value("parameters", int64_t{0});
    done.non_embedding_parameters = result.value("non_embedding_parameters", int64_t{0});
    static const std::set<std::string> kCommon = {"step",
                                                  "train_loss",
                                                  "val_loss",
                                                  "tokens_per_s",
                                                  "examples_per_s",
                                                  "parameters",
                                                  "non_embedding_parameters"};
    for (const auto& [key, value] : result.items())
      if (value.is_number() && !kCommon.count(key)) done.results[key] = value.get<double>();
    done.already_finished = true;
    return done;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace attnlab
