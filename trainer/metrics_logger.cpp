// Implementation of metrics_logger.h. All records stay in memory (a few per log step — tiny next to
// a model) so the CSV can be regenerated whenever its column set grows.
#include "trainer/metrics_logger.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "common/error.h"
#include "config/override_parser.h"
#include "io/atomic_file.h"

namespace attnlab {
namespace fs = std::filesystem;
namespace {

// CSV cell: numbers as JSON prints them (shortest round-trip), strings quoted when needed.
std::string csv_cell(const nlohmann::json& value) {
  if (value.is_null()) return "";
  if (!value.is_string()) return value.dump();
  const std::string& s = value.get_ref<const std::string&>();
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

std::map<std::string, HParamValue> hparams_from_overrides(
    const std::vector<std::string>& overrides) {
  std::map<std::string, HParamValue> hparams;
  for (const std::string& item : overrides) {
    config::Override o;
    try {
      o = config::parse_override(item);
    } catch (const UserError&) {
      continue;
    }
    if (!o.has_value || o.op == config::OverrideOp::kDelete || o.is_sweep()) continue;
    if (!o.value.IsScalar()) {
      hparams.emplace(o.key, o.value_text);  // a list or map, as typed
      continue;
    }
    const std::string& text = o.value.Scalar();
    char* end = nullptr;
    const double number = std::strtod(text.c_str(), &end);
    if (!text.empty() && end == text.c_str() + text.size() && std::isfinite(number))
      hparams.emplace(o.key, number);
    else if (text == "true" || text == "false")
      hparams.emplace(o.key, text == "true");
    else
      hparams.emplace(o.key, text);
  }
  return hparams;
}

std::string tensorboard_dir(const std::string& run_dir) {
  return (fs::path(run_dir) / "tensorboard").string();
}

MetricsLogger::MetricsLogger(const std::string& run_dir, std::optional<int64_t> resume_step,
                             bool tensorboard)
    : jsonl_path_((fs::path(run_dir) / "metrics.jsonl").string()),
      csv_path_((fs::path(run_dir) / "metrics.csv").string()) {
  fs::create_directories(run_dir);
  if (resume_step && fs::exists(jsonl_path_)) {
    std::ifstream in(jsonl_path_);
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty()) continue;
      nlohmann::json record;
      try {
        record = nlohmann::json::parse(line);
      } catch (const nlohmann::json::parse_error&) {
        // A crash can leave a half-written last line; anything else is real damage.
        if (in.peek() == EOF) break;
        throw UserError("'" + jsonl_path_ + "' line " + std::to_string(line_no) +
                        " is not valid JSON");
      }
      // A record the logger cannot have written is damage, not something to guess around.
      const std::string where = "'" + jsonl_path_ + "' line " + std::to_string(line_no);
      check_user(record.is_object(), where + " is not a JSON object: " + line);
      check_user(!record.contains("step") || record["step"].is_number_integer(),
                 where + ": 'step' must be an integer, got " +
                     (record.contains("step") ? record["step"].dump() : std::string()));
      if (record.contains("step") && record["step"].get<int64_t>() > *resume_step) continue;
      records_.push_back(record);
      add_columns(record);
    }
  }
  rewrite_jsonl();
  rewrite_csv();
  jsonl_.open(jsonl_path_, std::ios::app);
  csv_.open(csv_path_, std::ios::app);
  check_user(jsonl_.good() && csv_.good(), "cannot write metrics files in '" + run_dir + "'");
  if (tensorboard) {
    tensorboard_.emplace(tensorboard_dir(run_dir));
    tensorboard_->add_session_start(resume_step ? *resume_step + 1 : 0);
    tensorboard_->flush();
  }
}

MetricsLogger::~MetricsLogger() = default;  // the writer flushes and closes its file

void MetricsLogger::log_text(const std::string& tag, const std::string& text, int64_t step) {
  if (!tensorboard_) return;
  tensorboard_->add_text(tag, text, step);
  tensorboard_->flush();
}

void MetricsLogger::log_hparams(const std::map<std::string, HParamValue>& hparams,
                                const std::vector<std::string>& metric_tags) {
  if (!tensorboard_ || hparams_written_) return;
  tensorboard_->add_hparams(hparams, metric_tags);
  tensorboard_->flush();
  hparams_written_ = true;
}

void MetricsLogger::finish(bool success) {
  if (!tensorboard_ || finished_) return;
  finished_ = true;
  // Per run, not per file: a resumed run ends the session an earlier file started.
  tensorboard_->add_hparams_end(success ? HParamsStatus::kSuccess : HParamsStatus::kFailure);
  tensorboard_->flush();
}

bool MetricsLogger::add_columns(const nlohmann::json& record) {
  bool added = false;
  if (columns_.empty()) {
    columns_.push_back("step");
    added = true;
  }
  for (const auto& item : record.items()) {
    if (std::find(columns_.begin(), columns_.end(), item.key()) == columns_.end()) {
      columns_.push_back(item.key());
      added = true;
    }
  }
  return added;
}

std::string MetricsLogger::csv_row(const nlohmann::json& record) const {
  std::string row;
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (i) row += ',';
    auto it = record.find(columns_[i]);
    if (it != record.end()) row += csv_cell(*it);
  }
  return row + "\n";
}

void MetricsLogger::rewrite_jsonl() {
  std::string text;
  for (const auto& record : records_) text += record.dump() + "\n";
  write_file_atomic(jsonl_path_, text);
}

void MetricsLogger::rewrite_csv() {
  std::string text;
  if (!columns_.empty()) {
    for (size_t i = 0; i < columns_.size(); ++i) text += (i ? "," : "") + columns_[i];
    text += "\n";
  }
  for (const auto& record : records_) text += csv_row(record);
  write_file_atomic(csv_path_, text);
}

void MetricsLogger::log(const nlohmann::json& record) {
  check_user(record.is_object() && record.contains("step") && record["step"].is_number_integer(),
             "metrics record needs an integer 'step': " + record.dump());
  records_.push_back(record);
  if (tensorboard_) {
    const int64_t step = record["step"].get<int64_t>();
    for (const auto& item : record.items()) {
      if (item.key() == "step") continue;
      if (item.value().is_number())
        tensorboard_->add_scalar(item.key(), item.value().get<double>(), step);
      else if (item.value().is_string())
        tensorboard_->add_text(item.key(), item.value().get<std::string>(), step);
    }
    tensorboard_->flush();
  }
  jsonl_ << record.dump() << "\n";
  jsonl_.flush();
  if (add_columns(record)) {
    // The header changed: regenerate the file, then reopen the append stream on the new file.
    csv_.close();
    rewrite_csv();
    csv_.open(csv_path_, std::ios::app);
  } else {
    csv_ << csv_row(record);
    csv_.flush();
  }
}

double peak_rss_mib() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

}  // namespace attnlab
