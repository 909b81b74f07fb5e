// Per-run metric files, one record per log event:
//   <run_dir>/metrics.jsonl  one JSON object per line, e.g. {"step":10,"split":"train","loss":3.2}
//   <run_dir>/metrics.csv    the same records as a table; the header is the union of keys seen so
//                            far ("step" first, then in order of first appearance; keys within
//                            one record come alphabetically, as nlohmann::json stores them). When a
//                            record brings a new key, the CSV is rewritten from the in-memory
//                            records (written atomically), so the header always matches the rows;
//                            otherwise rows are appended. Missing values are empty cells.
//   <run_dir>/tensorboard/   (with `tensorboard`) TensorBoard event files: every numeric value of a
//                            record as a scalar under its key ("train/loss", "lr", "mfu", ...),
//                            string values, log_text() and the config as text, log_hparams() for
//                            the HParams tab. `tensorboard --logdir runs/` shows every run live.
// Values are numbers or strings. On resume, open with `resume_step`: records with step >
// resume_step (logged after the checkpoint being resumed) are dropped from both files so curves
// don't repeat; the new event file starts with a SessionLog START at resume_step + 1, which makes
// TensorBoard drop what an earlier file logged past the checkpoint the same way.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/tensorboard_writer.h"

namespace attnlab {

// A run's hyperparameters for TensorBoard's HParams tab: its command-line overrides, read with the
// override grammar (`optim.lr=3e-4` -> "optim.lr": 0.0003, `attention=moh` -> "attention":
// "moh"), which in a sweep are exactly what varies. Deletions and unparsable items are left out.
std::map<std::string, HParamValue> hparams_from_overrides(
    const std::vector<std::string>& overrides);

class MetricsLogger {
 public:
  // Creates/opens the files in run_dir. Without resume_step, existing files are replaced.
  explicit MetricsLogger(const std::string& run_dir,
                         std::optional<int64_t> resume_step = std::nullopt,
                         bool tensorboard = false);
  ~MetricsLogger();

  // Appends one record; `record` must hold an integer "step".
  void log(const nlohmann::json& record);
  // TensorBoard only (no-ops without it): markdown text, e.g. the config or a sample.
  void log_text(const std::string& tag, const std::string& text, int64_t step);
  // The HParams tab: this run's hyperparameters and the metric tags to compare runs by.
  void log_hparams(const std::map<std::string, HParamValue>& hparams,
                   const std::vector<std::string>& metric_tags);
  // Marks the run finished (HParams status success) or not (failure); once, at the end.
  void finish(bool success);

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
  std::optional<TensorBoardWriter> tensorboard_;
  bool hparams_written_ = false, finished_ = false;
};

// The TensorBoard log directory of a run.
std::string tensorboard_dir(const std::string& run_dir);

// Peak resident set size of this process in MiB (getrusage ru_maxrss).
double peak_rss_mib();

}  // namespace attnlab
