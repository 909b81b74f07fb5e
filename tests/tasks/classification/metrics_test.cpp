// Confusion-matrix metrics against values computed by hand (fractions written out below), the
// zero-division conventions, and the json / markdown / flat forms agreeing with the matrix.
#include <gtest/gtest.h>

#include "tasks/classification/classification_metrics.h"

using namespace attnlab;

namespace {
const std::vector<std::string> kClasses = {"a", "b", "c"};
}

TEST(ClassificationMetrics, HandComputedThreeClassMatrix) {
  // rows = true, columns = predicted. Column sums 7, 3, 5; row sums 6, 5, 4; trace 11 of 15.
  const std::vector<std::vector<int64_t>> confusion = {{5, 1, 0}, {2, 2, 1}, {0, 0, 4}};
  ClassificationMetrics m = metrics_from_confusion(confusion, kClasses);
  EXPECT_EQ(m.total, 15);
  EXPECT_EQ(m.support, (std::vector<int64_t>{6, 5, 4}));
  EXPECT_DOUBLE_EQ(m.accuracy, 11.0 / 15.0);
  EXPECT_DOUBLE_EQ(m.precision[0], 5.0 / 7.0);
  EXPECT_DOUBLE_EQ(m.precision[1], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.precision[2], 4.0 / 5.0);
  EXPECT_DOUBLE_EQ(m.recall[0], 5.0 / 6.0);
  EXPECT_DOUBLE_EQ(m.recall[1], 2.0 / 5.0);
  EXPECT_DOUBLE_EQ(m.recall[2], 1.0);
  // F1: 2pr/(p+r) = 10/13, 1/2, 8/9.
  EXPECT_NEAR(m.f1[0], 10.0 / 13.0, 1e-15);
  EXPECT_NEAR(m.f1[1], 0.5, 1e-15);
  EXPECT_NEAR(m.f1[2], 8.0 / 9.0, 1e-15);
  EXPECT_NEAR(m.macro_f1, (10.0 / 13.0 + 0.5 + 8.0 / 9.0) / 3.0, 1e-15);
}

TEST(ClassificationMetrics, NeverPredictedAndEmptyClassesCountAsZero) {
  // Class b is never predicted (precision 0/0 -> 0); class c has no examples and no predictions.
  ClassificationMetrics m = metrics_from_confusion({{3, 0, 0}, {1, 0, 0}, {0, 0, 0}}, kClasses);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.75);
  EXPECT_DOUBLE_EQ(m.precision[0], 0.75);
  EXPECT_DOUBLE_EQ(m.recall[0], 1.0);
  EXPECT_EQ(m.precision[1], 0.0);
  EXPECT_EQ(m.recall[1], 0.0);
  EXPECT_EQ(m.f1[2], 0.0);
  EXPECT_NEAR(m.macro_f1, (6.0 / 7.0) / 3.0, 1e-15);  // f1_a = 2(3/4)(1)/(7/4) = 6/7
}

TEST(ClassificationMetrics, CountsPairsIntoTheMatrix) {
  const std::vector<int64_t> labels = {0, 0, 1, 2, 2, 2, 1};
  const std::vector<int64_t> predictions = {0, 2, 1, 2, 0, 2, 0};
  ClassificationMetrics m = classification_metrics(labels, predictions, kClasses);
  const std::vector<std::vector<int64_t>> expected = {{1, 0, 1}, {1, 1, 0}, {1, 0, 2}};
  EXPECT_EQ(m.confusion, expected);
  EXPECT_DOUBLE_EQ(m.accuracy, 4.0 / 7.0);
  EXPECT_THROW(classification_metrics({0, 3}, {0, 0}, kClasses), c10::Error);
  EXPECT_THROW(classification_metrics({0}, {0, 1}, kClasses), c10::Error);
}

TEST(ClassificationMetrics, JsonMarkdownAndFlatFormsAgree) {
  ClassificationMetrics m = metrics_from_confusion({{5, 1, 0}, {2, 2, 1}, {0, 0, 4}}, kClasses);
  nlohmann::json j = metrics_to_json(m);
  EXPECT_EQ(j["confusion"].get<std::vector<std::vector<int64_t>>>(), m.confusion);
  EXPECT_DOUBLE_EQ(j["per_class"]["b"]["recall"].get<double>(), 0.4);
  EXPECT_EQ(j["per_class"]["c"]["support"].get<int64_t>(), 4);
  EXPECT_DOUBLE_EQ(j["macro_f1"].get<double>(), m.macro_f1);
  std::map<std::string, double> flat;
  for (const auto& [key, value] : flat_metrics(m, "test/")) flat[key] = value;
  EXPECT_DOUBLE_EQ(flat.at("test/recall/b"), 0.4);
  EXPECT_DOUBLE_EQ(flat.at("test/precision/a"), 5.0 / 7.0);
  EXPECT_DOUBLE_EQ(flat.at("test/accuracy"), 11.0 / 15.0);
  const std::string table = metrics_to_markdown(m, "test");
  EXPECT_NE(table.find("| b | 0.6667 | 0.4000 | 0.5000 | 5 |"), std::string::npos) << table;
  EXPECT_NE(table.find("| a | 5 | 1 | 0 |"), std::string::npos) << table;
}
