// Per-run metric files, one record per log event:
//   <run_dir>/metrics.jsonl  one JSON object per line, e.g. {"step":10,"split":"train","loss":3.2}
//   <run_dir>/metrics.csv    the same records as a table; the header is the union of keys seen so
//                            far ("step" first, then in order of first appearance; keys within
//                            one record come alphabetically, as nlohmann::json stores them). When a
//                            record brings a new key, the CSV is rewritten from the in-memory
//                            records (written atomically), so the header always matches the rows;
//                            otherwise rows are appended. Missing values are empty cells.
// Values are numbers or strings. On resume, open with `resume_step`: records with step >
// resume_step (logged after the checkpoint being resumed) are dropped from both files so curves
// don't repeat.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace attnlab {

class MetricsLogger {
 public:
  // Creates/opens the files in run_dir. Without resume_step, existing files are replaced.
  explicit MetricsLogger(const std::string& run_dir,
                         std::optional<int64_t> resume_step = std::nullopt);

  // Appends one record; `record` must hold an integer "step".
  void log(const nlohmann::json& record);

  const std::vector<nlohmann::json>& records() const { return records_; }
  const std::vector<std::string>& columns() const { return columns_; }
  std::string jsonl_path() const { return jsonl_path_; }
  std::string csv_path() const { return csv_path_; }

 private:
  void rewrite_jsonl();
  void rewrite_csv();
  std::string csv_row(const nlohmann::json& record) const;
  bool add_columns(const nlohmann::json& record);

  std::string jsonl_path_, csv_path_;
  std::vector<nlohmann::json> records_;
  std::vector<std::string> columns_;
  std::ofstream jsonl_, csv_;
};

// Peak resident set size of this process in MiB (getrusage ru_maxrss).
double peak_rss_mib();

}  // namespace attnlab
