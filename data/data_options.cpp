// The data kinds and the binding of the data group; see data_options.h.
#include "data/data_options.h"

#include <yaml-cpp/yaml.h>

#include <stdexcept>
#include <type_traits>

#include "common/config_access.h"
#include "common/error.h"
#include "common/suggestions.h"
#include "config/options.h"
#include "data/corpora/labelled_dataset.h"

namespace attnlab {

Registry<DataKindSpec>& data_kind_registry() {
  static Registry<DataKindSpec> registry("data kind",
                                         {{"corpus", {CorpusDataOptions{}}},
                                          {"files", {FilesDataOptions{}}},
                                          {"labelled_files", {LabelledFilesDataOptions{}}},
                                          {"spam_assassin", {SpamAssassinDataOptions{}}}});
  return registry;
}

template <class ConfigTree>
std::string data_kind(const ConfigTree& config) {
  if (cfg::find(config, "data.dataset").IsDefined()) {
    const std::string dataset = cfg::get<std::string>(config, "data.dataset");
    check_user(labelled_dataset_registry().contains(dataset),
               "data.dataset: unknown labelled dataset '" + dataset +
                   "'; available: " + join_names(labelled_dataset_registry().names()));
    return dataset == "files" ? "labelled_files" : dataset;
  }
  return cfg::find(config, "data.train").IsDefined() ? "files" : "corpus";
}

template std::string data_kind(const YAML::Node&);

std::vector<std::string> data_loader_keys(const std::string& kind) {
  if (kind == "corpus") return {"name", "corpus"};
  if (kind == "files") return {"name", "train", "val"};
  if (kind == "labelled_files") return {"name", "dataset", "train", "val", "test"};
  return {"name", "dataset"};
}

template <class ConfigTree>
DataOptions data_options(const ConfigTree& config) {
  const std::string kind = data_kind(config);
  const std::string label =
      cfg::has(config, "data.name") ? cfg::get<std::string>(config, "data.name") : kind;
  const config::BindScope scope{"data '" + label + "'", data_loader_keys(kind)};
  return std::visit(
      [&](const auto& defaults) -> DataOptions {
        return config::bind<std::decay_t<decltype(defaults)>>(cfg::find(config, "data"), "data",
                                                              scope);
      },
      data_kind_registry().get(kind).defaults);
}

template DataOptions data_options(const YAML::Node&);

const LanguageModelDataOptions& language_model_data(const DataOptions& options) {
  return std::visit(
      [](const auto& o) -> const LanguageModelDataOptions& {
        using Options = std::decay_t<decltype(o)>;
        if constexpr (std::is_base_of_v<LanguageModelDataOptions, Options>) {
          return o;
        } else {
          throw UserError(
              "data.dataset: a labelled (classification) dataset where language-model text is "
              "needed; use a data config with data.corpus or data.train");
        }
      },
      options);
}

const LabelledDataOptions& labelled_data(const DataOptions& options) {
  return std::visit(
      [](const auto& o) -> const LabelledDataOptions& {
        using Options = std::decay_t<decltype(o)>;
        if constexpr (std::is_base_of_v<LabelledDataOptions, Options>) {
          return o;
        } else {
          throw UserError(
              "data.dataset: a labelled dataset is needed (e.g. data=spam_assassin or "
              "data=labelled_files)");
        }
      },
      options);
}

const std::optional<std::string>& data_cache_setting(const DataOptions& options) {
  return std::visit(
      [](const auto& o) -> const std::optional<std::string>& { return o.cache_dir(); }, options);
}

const std::optional<std::string>& data_derived_setting(const DataOptions& options) {
  return std::visit(
      [](const auto& o) -> const std::optional<std::string>& { return o.derived_dir(); }, options);
}

}  // namespace attnlab
