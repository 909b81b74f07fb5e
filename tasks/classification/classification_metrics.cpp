// Confusion-matrix metrics; see classification_metrics.h.
#include "tasks/classification/classification_metrics.h"

#include <cstdio>
#include <sstream>

#include "common/error.h"

namespace attnlab {

namespace {

double ratio(int64_t numerator, int64_t denominator) {
  return denominator > 0 ? static_cast<double>(numerator) / static_cast<double>(denominator) : 0.0;
}

std::string fixed(double value, int digits = 4) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, value);
  return buffer;
}

}  // namespace

ClassificationMetrics metrics_from_confusion(const std::vector<std::vector<int64_t>>& confusion,
                                             const std::vector<std::string>& classes) {
  const size_t C = classes.size();
  TORCH_CHECK(C > 0 && confusion.size() == C, "confusion matrix has ", confusion.size(),
              " rows for ", C, " classes");
  ClassificationMetrics m;
  m.classes = classes;
  m.confusion = confusion;
  std::vector<int64_t> predicted(C, 0);
  int64_t correct = 0;
  for (size_t r = 0; r < C; ++r) {
    TORCH_CHECK(confusion[r].size() == C, "confusion matrix row ", r, " has ", confusion[r].size(),
                " entries for ", C, " classes");
    int64_t row = 0;
    for (size_t k = 0; k < C; ++k) {
      TORCH_CHECK(confusion[r][k] >= 0, "negative count in the confusion matrix");
      row += confusion[r][k];
      predicted[k] += confusion[r][k];
    }
    m.support.push_back(row);
    m.total += row;
    correct += confusion[r][r];
  }
  m.accuracy = ratio(correct, m.total);
  for (size_t c = 0; c < C; ++c) {
    const double p = ratio(confusion[c][c], predicted[c]);
    const double r = ratio(confusion[c][c], m.support[c]);
    m.precision.push_back(p);
    m.recall.push_back(r);
    m.f1.push_back(p + r > 0 ? 2 * p * r / (p + r) : 0.0);
    m.macro_f1 += m.f1.back() / static_cast<double>(C);
  }
  return m;
}

ClassificationMetrics classification_metrics(const std::vector<int64_t>& labels,
                                             const std::vector<int64_t>& predictions,
                                             const std::vector<std::string>& classes) {
  TORCH_CHECK(labels.size() == predictions.size(), labels.size(), " labels but ",
              predictions.size(), " predictions");
  const auto C = static_cast<int64_t>(classes.size());
  std::vector<std::vector<int64_t>> confusion(classes.size(), std::vector<int64_t>(classes.size()));
  for (size_t i = 0; i < labels.size(); ++i) {
    TORCH_CHECK(labels[i] >= 0 && labels[i] < C && predictions[i] >= 0 && predictions[i] < C,
                "label/prediction (", labels[i], ", ", predictions[i], ") outside [0, ", C, ")");
    ++confusion[static_cast<size_t>(labels[i])][static_cast<size_t>(predictions[i])];
  }
  return metrics_from_confusion(confusion, classes);
}

nlohmann::json metrics_to_json(const ClassificationMetrics& m) {
  nlohmann::json per_class = nlohmann::json::object();
  for (size_t c = 0; c < m.classes.size(); ++c)
    per_class[m.classes[c]] = {{"precision", m.precision[c]},
                               {"recall", m.recall[c]},
                               {"f1", m.f1[c]},
                               {"support", m.support[c]}};
  return {{"accuracy", m.accuracy}, {"macro_f1", m.macro_f1},   {"total", m.total},
          {"classes", m.classes},   {"confusion", m.confusion}, {"per_class", per_class}};
}

std::vector<std::pair<std::string, double>> flat_metrics(const ClassificationMetrics& m,
                                                         const std::string& prefix) {
  std::vector<std::pair<std::string, double>> out = {{prefix + "accuracy", m.accuracy},
                                                     {prefix + "macro_f1", m.macro_f1}};
  for (size_t c = 0; c < m.classes.size(); ++c) {
    out.emplace_back(prefix + "precision/" + m.classes[c], m.precision[c]);
    out.emplace_back(prefix + "recall/" + m.classes[c], m.recall[c]);
    out.emplace_back(prefix + "f1/" + m.classes[c], m.f1[c]);
  }
  return out;
}

std::string metrics_to_markdown(const ClassificationMetrics& m, const std::string& title) {
  std::ostringstream out;
  out << "## " << title << "\n\n"
      << "accuracy " << fixed(m.accuracy) << " | macro-F1 " << fixed(m.macro_f1) << " | " << m.total
      << " examples\n\n"
      << "| class | precision | recall | F1 | support |\n|---|---:|---:|---:|---:|\n";
  for (size_t c = 0; c < m.classes.size(); ++c)
    out << "| " << m.classes[c] << " | " << fixed(m.precision[c]) << " | " << fixed(m.recall[c])
        << " | " << fixed(m.f1[c]) << " | " << m.support[c] << " |\n";
  out << "\nConfusion matrix (rows: true class, columns: predicted)\n\n| true \\ predicted |";
  for (const auto& name : m.classes) out << " " << name << " |";
  out << "\n|---|";
  for (size_t c = 0; c < m.classes.size(); ++c) out << "---:|";
  out << "\n";
  for (size_t r = 0; r < m.classes.size(); ++r) {
    out << "| " << m.classes[r] << " |";
    for (int64_t count : m.confusion[r]) out << " " << count << " |";
    out << "\n";
  }
  return out.str();
}

}  // namespace attnlab
