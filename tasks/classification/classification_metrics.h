// Classification metrics from a confusion matrix (rows = true class, columns = predicted):
//   accuracy    = trace / total
//   precision_c = M[c][c] / sum_r M[r][c]   (0 when class c is never predicted)
//   recall_c    = M[c][c] / sum_k M[c][k]   (0 when class c has no examples)
//   f1_c        = 2 p r / (p + r)           (0 when p + r = 0)
//   macro_f1    = mean_c f1_c               (sklearn's f1_score(average="macro", zero_division=0))
// written as JSON and as a readable markdown table (`attnlab train task=classification` puts
// both in the run dir).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace attnlab {

struct ClassificationMetrics {
  std::vector<std::string> classes;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
  int64_t total = 0;
  double accuracy = 0.0;
  double macro_f1 = 0.0;
  std::vector<double> precision, recall, f1;
  std::vector<int64_t> support;  // examples per true class
};

// From a confusion matrix (square, one row per class name).
ClassificationMetrics metrics_from_confusion(const std::vector<std::vector<int64_t>>& confusion,
                                             const std::vector<std::string>& classes);

// Counts (label, prediction) pairs into a confusion matrix, then metrics_from_confusion.
ClassificationMetrics classification_metrics(const std::vector<int64_t>& labels,
                                             const std::vector<int64_t>& predictions,
                                             const std::vector<std::string>& classes);

// {"accuracy", "macro_f1", "total", "classes", "confusion", "per_class": {name: {precision,
// recall, f1, support}}}
nlohmann::json metrics_to_json(const ClassificationMetrics& metrics);

// Flat numeric entries for metrics logs / result.json, each prefixed: "<prefix>accuracy",
// "<prefix>macro_f1", "<prefix>precision/<class>", "<prefix>recall/<class>", "<prefix>f1/<class>".
std::vector<std::pair<std::string, double>> flat_metrics(const ClassificationMetrics& metrics,
                                                         const std::string& prefix);

// Markdown: a headline line, a per-class table and the confusion matrix.
std::string metrics_to_markdown(const ClassificationMetrics& metrics, const std::string& title);

}  // namespace attnlab
