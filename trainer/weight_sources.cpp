// Weights from wherever a user points init_from, export or grow (see weight_sources.h): the
// format is told by the path, then the matching reader (checkpoint, safetensors, torch.save,
// Hugging Face folder) returns attnlab's names.
#include "trainer/weight_sources.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <iostream>

#include "common/config_access.h"
#include "common/error.h"
#include "config/run_options.h"
#include "interop/hf/hf_model.h"
#include "io/safetensors.h"
#include "io/torch_pickle_reader.h"
#include "trainer/checkpoint.h"

namespace attnlab {

StateDict read_weights(const std::string& path_or_run_dir) {
  namespace fs = std::filesystem;
  const std::string hf_folder = hf_source_folder(path_or_run_dir);
  if (!hf_folder.empty() || path_or_run_dir == "hf:") {
    HfWeights hf = read_hf_weights(read_hf_architecture(hf_folder));
    check_user(hf.unmapped.empty(), "init_from '" + path_or_run_dir +
                                        "': " + std::to_string(hf.unmapped.size()) +
                                        " tensors have no place in attnlab's model (first: " +
                                        (hf.unmapped.empty() ? "" : hf.unmapped.front()) +
                                        "); `attnlab import` lists them all");
    return hf.tensors;
  }
  check_user(fs::exists(path_or_run_dir), "weights path '" + path_or_run_dir + "' does not exist");
  const bool has_checkpoints = fs::is_directory(fs::path(path_or_run_dir) / "checkpoints");
  if (has_safetensors(path_or_run_dir) && !has_checkpoints) {
    // A .safetensors file, or a folder `attnlab import` wrote (attnlab's names).
    SafetensorsSet files(path_or_run_dir);
    StateDict out;
    for (const auto& name : files.names()) out[name] = files.tensor(name);
    return out;
  }
  if (fs::is_directory(path_or_run_dir) || is_checkpoint_file(path_or_run_dir))
    return read_checkpoint_model_state(resolve_checkpoint(path_or_run_dir));
  return read_torch_save_file(path_or_run_dir);
}

LoadReport load_init_weights(torch::nn::Module& model, const StateDict& weights,
                             const std::string& source, bool strict) {
  try {
    LoadReport report = load_state_dict(model, weights, strict);
    // init_strict=false loads what fits; when nothing fits, the weights are another model's and
    // training would start from scratch while the user believes it fine-tunes.
    check_user(!report.loaded.empty() || model.named_parameters().is_empty(),
               "init_from '" + source + "': none of the model's tensors fit (" + report.headline() +
                   "); the weights are for another model: set model.* as the source has them "
                   "(an imported folder or a run dir sets them for you)");
    return report;
  } catch (const WeightMismatch& e) {
    throw UserError("init_from '" + source + "': " + e.report().headline() +
                    "; set init_strict=false to load the " +
                    std::to_string(e.report().loaded.size()) + " tensors that fit");
  }
}

LoadReport init_from_config(torch::nn::Module& model, const YAML::Node& config) {
  if (!cfg::has(config, "init_from")) return {};
  std::string path = cfg::get<std::string>(config, "init_from");
  bool strict = run_options(config).init_strict;
  const LoadReport report = load_init_weights(model, read_weights(path), path, strict);
  if (!report.complete())
    std::cerr << "warning: init_from '" << path << "': " << report.summary() << "\n";
  return report;
}

}  // namespace attnlab
