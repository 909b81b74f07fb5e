// The fixed stratified split (disjoint, stratified, independent of the run seed, stable under
// reordering of the examples) on synthetic data and on the real SpamAssassin corpus, and the
// SpamAssassin loader's labels and text extraction.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <set>

#include "common/error.h"
#include "data/corpora/labelled_dataset.h"
#include "data/corpora/spam_assassin.h"

using namespace attnlab;

namespace {

LabelledDataset synthetic(const std::vector<int64_t>& per_class) {
  LabelledDataset d;
  for (size_t c = 0; c < per_class.size(); ++c) {
    d.classes.push_back("class" + std::to_string(c));
    for (int64_t i = 0; i < per_class[c]; ++i)
      d.examples.push_back({"c" + std::to_string(c) + "/" + std::to_string(i), "text", int64_t(c)});
  }
  return d;
}

std::set<std::string> names(const std::vector<LabelledExample>& examples) {
  std::set<std::string> out;
  for (const auto& e : examples) out.insert(e.name);
  return out;
}

void expect_partition(const LabelledDataset& d, const StratifiedSplit& s) {
  auto train = names(s.train), val = names(s.val), test = names(s.test);
  EXPECT_EQ(train.size() + val.size() + test.size(), d.examples.size());
  std::set<std::string> all = train;
  all.insert(val.begin(), val.end());
  all.insert(test.begin(), test.end());
  EXPECT_EQ(all.size(), d.examples.size()) << "splits overlap";
}

}  // namespace

TEST(StratifiedSplit, DisjointStratifiedAndFixed) {
  LabelledDataset d = synthetic({390, 25, 190});
  StratifiedSplit s = stratified_split(d, 0.1, 0.2, 0);
  expect_partition(d, s);
  // round(n * fraction) per class.
  EXPECT_EQ(class_counts(s.test, 3), (std::vector<int64_t>{78, 5, 38}));
  EXPECT_EQ(class_counts(s.val, 3), (std::vector<int64_t>{39, 3, 19}));
  EXPECT_EQ(class_counts(s.train, 3), (std::vector<int64_t>{273, 17, 133}));

  // Same split from a shuffled copy (depends on names, not order); another split_seed differs.
  LabelledDataset reversed = d;
  std::reverse(reversed.examples.begin(), reversed.examples.end());
  EXPECT_EQ(names(stratified_split(reversed, 0.1, 0.2, 0).test), names(s.test));
  EXPECT_NE(names(stratified_split(d, 0.1, 0.2, 1).test), names(s.test));
}

TEST(StratifiedSplit, RareClassesKeepHeldOutExamplesAndBadFractionsFail) {
  StratifiedSplit s = stratified_split(synthetic({100, 3}), 0.1, 0.1, 0);
  EXPECT_EQ(class_counts(s.val, 2)[1], 1);
  EXPECT_EQ(class_counts(s.test, 2)[1], 1);
  EXPECT_EQ(class_counts(s.train, 2)[1], 1);
  EXPECT_THROW(stratified_split(synthetic({10, 10}), 0.6, 0.5, 0), UserError);
  EXPECT_THROW(stratified_split(synthetic({10, 10}), -0.1, 0.2, 0), UserError);
  EXPECT_THROW(stratified_split(synthetic({10, 2}), 0.3, 0.3, 0), UserError);  // none to train
}

TEST(SpamAssassin, GroupLabelsAndEmailText) {
  EXPECT_EQ(spam_assassin_label("easy-ham-1"), 0);
  EXPECT_EQ(spam_assassin_label("easy_ham_2"), 0);
  EXPECT_EQ(spam_assassin_label("hard-ham-1"), 1);
  EXPECT_EQ(spam_assassin_label("spam-2"), 2);
  EXPECT_EQ(spam_assassin_label("spam"), 2);
  EXPECT_EQ(spam_assassin_label("ham-1"), -1);
  EXPECT_EQ(spam_assassin_label("readme"), -1);

  const std::string message =
      "Received: from list.example.org\r\nSUBJECT: Cheap\r\n  meds\r\nFrom: a@b.c\r\n\r\nBody "
      "line\r\n\r\nsecond paragraph\r\n";
  EXPECT_EQ(email_text(message, {"Subject"}),
            "SUBJECT: Cheap\n  meds\n\nBody line\r\n\r\nsecond paragraph\r\n");
  EXPECT_EQ(email_text(message, {}), "Body line\r\n\r\nsecond paragraph\r\n");
  EXPECT_EQ(email_text("Subject: only headers\n", {"subject"}), "Subject: only headers\n\n");
}

TEST(SpamAssassin, RealCorpusCountsAndSplit) {
  YAML::Node config;
  config["data"]["dataset"] = "spam_assassin";
  config["data"]["keep_headers"].push_back("Subject");
  LabelledDataset d = load_labelled_dataset(config);
  ASSERT_EQ(d.classes, spam_assassin_classes());
  EXPECT_EQ(class_counts(d.examples, 3), (std::vector<int64_t>{3900, 250, 1896}));
  StratifiedSplit s = split_from_config(d, config);  // defaults: val 0.1, test 0.2, split_seed 0
  expect_partition(d, s);
  EXPECT_EQ(class_counts(s.test, 3), (std::vector<int64_t>{780, 50, 379}));
  EXPECT_EQ(class_counts(s.val, 3), (std::vector<int64_t>{390, 25, 190}));
  // Every example keeps its subject line and drops the rest of the header block.
  size_t with_subject = 0;
  for (const auto& e : d.examples) {
    with_subject += e.text.rfind("Subject:", 0) == 0;
    EXPECT_NE(e.text.rfind("Received:", 0), 0u) << e.name;
    EXPECT_NE(e.text.rfind("Return-Path:", 0), 0u) << e.name;
  }
  EXPECT_GT(with_subject, d.examples.size() * 9 / 10);

  config["data"]["max_per_class"] = 7;
  EXPECT_EQ(class_counts(load_labelled_dataset(config).examples, 3),
            (std::vector<int64_t>{7, 7, 7}));
}
