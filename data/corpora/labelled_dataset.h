// Labelled text datasets for classification (`task=classification`): a dataset is a list of
// (name, text, label) examples plus its class names, loaded by name (`data.dataset`) from a small
// registry, and cut into train / val / test by a FIXED stratified split:
//   within each class, examples are ordered by a stable hash of (data.split_seed, example name);
//   the first round(n_c * test_fraction) go to test, the next round(n_c * val_fraction) to val,
//   the rest to train.
// The split depends only on the example names and data.split_seed, never on the run's `seed`, so
// every run, seed and sweep job evaluates on the same test set, and each class keeps its share
// in every split (every class with n_c >= 3 gets at least one val and one test example when the
// fractions are > 0).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/registry.h"
#include "config/config_node.h"

namespace attnlab {

// The split an example must go to whatever the fractions say (the user's data.val / data.test
// files); kByFraction: the stratified split decides.
enum class FixedSplit { kByFraction, kTrain, kVal, kTest };

struct LabelledExample {
  std::string name;  // unique within the dataset, e.g. "hard_ham/00001.1d6cbf...txt"
  std::string text;
  int64_t label = 0;  // index into LabelledDataset::classes
  FixedSplit split = FixedSplit::kByFraction;
};

struct LabelledDataset {
  std::vector<std::string> classes;
  std::vector<LabelledExample> examples;
};

// Loader options shared by every labelled dataset (from data.*).
struct LabelledDatasetOptions {
  std::filesystem::path cache;       // the data cache root (data_cache_dir)
  int64_t max_per_class = 0;         // data.max_per_class: first N per class by name (0 = all)
  std::vector<std::string> headers;  // data.keep_headers: e-mail headers kept before the body
  // The user's files (data.dataset=files, data/corpora/labelled_files.h): data.train / val / test
  // expanded, and the column (CSV) or key (JSON Lines) names of the text and the label.
  std::vector<std::filesystem::path> train_files, val_files, test_files;
  std::string text_key = "text", label_key = "label";
};

using LabelledDatasetLoader = std::function<LabelledDataset(const LabelledDatasetOptions&)>;
// name -> loader (spam_assassin, ...).
Registry<LabelledDatasetLoader>& labelled_dataset_registry();

struct StratifiedSplit {
  std::vector<LabelledExample> train, val, test;
};

// The fixed stratified split described above; UserError for fractions outside [0, 1) or a sum
// >= 1, or a class left without training examples. Examples with a FixedSplit go where it says;
// the fractions split the others.
StratifiedSplit stratified_split(const LabelledDataset& dataset, double val_fraction,
                                 double test_fraction, uint64_t split_seed);

// Examples per class, indexed by label.
std::vector<int64_t> class_counts(const std::vector<LabelledExample>& examples,
                                  int64_t num_classes);

// data.dataset, data.max_per_class, data.keep_headers and the cache -> the loaded dataset.
LabelledDataset load_labelled_dataset(const ConfigNode& config);

// data.val_fraction / test_fraction / split_seed applied to the loaded dataset.
StratifiedSplit split_from_config(const LabelledDataset& dataset, const ConfigNode& config);

}  // namespace attnlab
