// The labelled-dataset registry, the fixed stratified split and config plumbing (see
// labelled_dataset.h).
#include "data/corpora/labelled_dataset.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>

#include "common/config_access.h"
#include "common/error.h"
#include "common/suggestions.h"
#include "data/corpora/labelled_files.h"
#include "data/corpora/spam_assassin.h"
#include "data/corpora/user_files.h"
#include "data/data_cache.h"
#include "data/data_options.h"
#include "data/hash.h"

namespace attnlab {

Registry<LabelledDatasetLoader>& labelled_dataset_registry() {
  static Registry<LabelledDatasetLoader> registry(
      "labelled dataset", {{"spam_assassin", load_spam_assassin}, {"files", load_labelled_files}});
  return registry;
}

std::vector<int64_t> class_counts(const std::vector<LabelledExample>& examples,
                                  int64_t num_classes) {
  std::vector<int64_t> counts(static_cast<size_t>(num_classes), 0);
  for (const auto& example : examples) {
    TORCH_CHECK(example.label >= 0 && example.label < num_classes, "label ", example.label, " of '",
                example.name, "' is outside [0, ", num_classes, ")");
    ++counts[static_cast<size_t>(example.label)];
  }
  return counts;
}

StratifiedSplit stratified_split(const LabelledDataset& dataset, double val_fraction,
                                 double test_fraction, uint64_t split_seed) {
  check_user(val_fraction >= 0.0 && val_fraction < 1.0,
             "config key 'data.val_fraction': expected a value in [0, 1), got " +
                 std::to_string(val_fraction));
  check_user(test_fraction >= 0.0 && test_fraction < 1.0,
             "config key 'data.test_fraction': expected a value in [0, 1), got " +
                 std::to_string(test_fraction));
  check_user(val_fraction + test_fraction < 1.0,
             "config keys 'data.val_fraction' + 'data.test_fraction' must be < 1 (got " +
                 std::to_string(val_fraction + test_fraction) + ")");
  const int64_t num_classes = static_cast<int64_t>(dataset.classes.size());
  // Per class: (hash, index) pairs; the hash order is a seeded, platform-independent shuffle.
  std::vector<std::vector<std::pair<uint64_t, size_t>>> by_class(dataset.classes.size());
  for (size_t i = 0; i < dataset.examples.size(); ++i) {
    const auto& example = dataset.examples[i];
    check_user(example.label >= 0 && example.label < num_classes,
               "example '" + example.name + "' has label " + std::to_string(example.label) +
                   " outside the dataset's " + std::to_string(num_classes) + " classes");
    if (example.split != FixedSplit::kByFraction) continue;  // placed below
    Fnv64 hash;
    hash.update(&split_seed, sizeof(split_seed)).update(example.name);
    by_class[static_cast<size_t>(example.label)].emplace_back(hash.digest(), i);
  }
  StratifiedSplit split;
  for (const auto& example : dataset.examples) {
    if (example.split == FixedSplit::kTrain) split.train.push_back(example);
    if (example.split == FixedSplit::kVal) split.val.push_back(example);
    if (example.split == FixedSplit::kTest) split.test.push_back(example);
  }
  for (size_t c = 0; c < by_class.size(); ++c) {
    auto& members = by_class[c];
    std::sort(members.begin(), members.end());
    const auto n = static_cast<double>(members.size());
    // At least one val/test example per class when the fraction is > 0 and the class can spare
    // them (keeps rare classes measurable); rounding otherwise.
    auto share = [&](double fraction) {
      if (fraction <= 0.0) return size_t{0};
      return std::max<size_t>(members.size() >= 3 ? 1 : 0,
                              static_cast<size_t>(std::llround(n * fraction)));
    };
    const size_t n_test = share(test_fraction), n_val = share(val_fraction);
    if (members.empty()) continue;  // a class seen only in the fixed splits
    check_user(n_test + n_val < members.size(),
               "class '" + dataset.classes[c] + "' has " + std::to_string(members.size()) +
                   " examples: too few for data.val_fraction and data.test_fraction to leave "
                   "any for training");
    for (size_t k = 0; k < members.size(); ++k) {
      const LabelledExample& example = dataset.examples[members[k].second];
      (k < n_test ? split.test : k < n_test + n_val ? split.val : split.train).push_back(example);
    }
  }
  return split;
}

LabelledDataset load_labelled_dataset(const YAML::Node& config) {
  const std::string name = cfg::get<std::string>(config, "data.dataset");
  const DataOptions data = data_options(config);  // an unknown data.dataset is a UserError here
  const LabelledDataOptions& labelled = labelled_data(data);
  LabelledDatasetOptions options;
  options.cache = data_cache_dir(config);
  options.max_per_class = labelled.max_per_class();
  if (const auto* spam = std::get_if<SpamAssassinDataOptions>(&data))
    options.headers = spam->keep_headers();
  if (name == "files") {
    options.train_files =
        expand_file_patterns(file_patterns_at(config, "data.train"), "data.train");
    check_user(!options.train_files.empty(),
               "config key 'data.train': data.dataset=files needs the labelled files, a path, a "
               "glob or a list of them (.csv, .tsv or .jsonl, e.g. data.train=reviews.csv)");
    options.val_files = expand_file_patterns(file_patterns_at(config, "data.val"), "data.val");
    options.test_files = expand_file_patterns(file_patterns_at(config, "data.test"), "data.test");
    const auto& files = std::get<LabelledFilesDataOptions>(data);
    options.text_key = files.text_key();
    options.label_key = files.label_key();
    check_user(!options.text_key.empty() && !options.label_key.empty() &&
                   options.text_key != options.label_key,
               "config keys 'data.text_key' and 'data.label_key': expected two different, "
               "non-empty column names");
  }
  LabelledDataset dataset = labelled_dataset_registry().get(name)(options);
  check_user(!dataset.examples.empty(), "labelled dataset '" + name + "' has no examples");
  return dataset;
}

StratifiedSplit split_from_config(const LabelledDataset& dataset, const YAML::Node& config) {
  const DataOptions data = data_options(config);
  const LabelledDataOptions& labelled = labelled_data(data);
  const int64_t seed = labelled.split_seed();
  double val_fraction = labelled.val_fraction();
  double test_fraction = labelled.test_fraction();
  // A split given as files (data.val / data.test) takes nothing from the others by fraction.
  for (const auto& example : dataset.examples) {
    if (example.split == FixedSplit::kVal) val_fraction = 0.0;
    if (example.split == FixedSplit::kTest) test_fraction = 0.0;
  }
  return stratified_split(dataset, val_fraction, test_fraction, static_cast<uint64_t>(seed));
}

}  // namespace attnlab
