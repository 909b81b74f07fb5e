// `attnlab import hf_dir=<Hugging Face folder> out=<folder> [dtype=float32|bfloat16|float16]`:
// converts a transformers checkpoint (config.json + model.safetensors or shards) into attnlab's
// names. It maps every tensor onto the model config.json describes and checks every shape against
// it (without building the model), then streams the tensors from the memory-mapped source into
// the new file, converting one at a time and dropping each one's pages once written;
// anything unmapped, missing or misshapen stops the import with one line, the full list going to
// <out>.import_errors.txt, and nothing under <out>. On success <out> holds
//   model.safetensors   the weights under attnlab's names (streamed from the model)
//   config.yaml         the composed config of the imported architecture
//   pretrained.yaml     its settings as overrides: init_from=<out> applies them to a training run
//   tokenizer.json ...  the folder's tokenizer files, when it has them
//   import_report.txt   source, counts, what was dropped
// written under a temporary name and renamed. `init_from=hf:<folder>` does the same mapping
// without the intermediate folder.
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/command.h"
#include "cli/command_options.h"
#include "common/error.h"
#include "config/config.h"
#include "config/yaml_io.h"
#include "interop/hf/hf_model.h"
#include "interop/hf/pretrained_config.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

namespace attnlab {
namespace fs = std::filesystem;

namespace {

// `attnlab import`'s keys.
struct ImportCommandOptions {
  TORCH_ARG(std::optional<std::string>, hf_dir) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, out) = std::nullopt;
  TORCH_ARG(std::string, dtype) = "float32";

 public:
  template <class V>
  void visit(V& v) {
    v("hf_dir", hf_dir(), "the Hugging Face model folder (config.json + safetensors; required)");
    v("out", out(), "the new attnlab folder to write (required)");
    v("dtype", dtype(), "dtype of the written weights: float32, bfloat16 or float16");
  }
};

}  // namespace

int run_import_command(const CommandArgs& args) {
  const auto options = bind_command_options<ImportCommandOptions>("import", args.overrides);
  const std::string& hf_dir = required_option("import", "hf_dir", options.hf_dir());
  const std::string& out = required_option("import", "out", options.out());
  const torch::ScalarType dtype = parse_weights_dtype(options.dtype(), "import");
  check_new_folder(out, "attnlab import: out");
  const auto start = std::chrono::steady_clock::now();

  const HfArchitecture architecture = read_hf_architecture(hf_dir);
  HfWeights hf = read_hf_weights(architecture);
  config::ComposeRequest request;
  request.config_dir = args.config_dir;
  for (const auto& [key, value] : architecture.settings)
    if (key.rfind("tokenizer", 0) != 0) request.overrides.push_back(key + "=" + value);
  YAML::Node config = config::compose(request);
  // Checked against the tensors these settings build, without building the model.
  const LoadReport report = match_shapes(expected_attnlab_shapes(architecture), hf.tensors);

  const fs::path final_path = fs::absolute(out);
  if (!report.complete() || !hf.unmapped.empty()) {
    const std::string errors_file = final_path.string() + ".import_errors.txt";
    std::ofstream list(errors_file);
    for (const auto& name : hf.unmapped)
      list << "unmapped (no place in attnlab's model): " << name << "\n";
    list << report.full_list();
    std::string first = !hf.unmapped.empty()         ? "unmapped " + hf.unmapped.front()
                        : !report.mismatched.empty() ? report.mismatched.front()
                        : !report.missing.empty()    ? "missing " + report.missing.front()
                                                     : "unexpected " + report.unexpected.front();
    throw UserError("attnlab import '" + hf_dir + "': " + std::to_string(hf.unmapped.size()) +
                    " unmapped, " + std::to_string(report.missing.size()) + " missing, " +
                    std::to_string(report.mismatched.size()) + " misshapen tensors (first: " +
                    first + "); full list in " + errors_file + "; nothing was written to " + out);
  }

  // The settings users train with: the architecture, and the folder's tokenizer now in <out>.
  YAML::Node pretrained;
  for (const auto& [key, value] : architecture.settings) {
    if (key == "tokenizer.path")
      pretrained["overrides"].push_back(key + "=" + final_path.string());
    else
      pretrained["overrides"].push_back(key + "=" + value);
  }
  // Streamed from the mapped source, converted one tensor at a time.
  NamedTensorList tensors;
  for (const auto& name : report.loaded) tensors.emplace_back(name, hf.tensors.at(name));

  write_new_folder(out, "attnlab import: out", [&](const fs::path& folder) {
    write_safetensors((folder / "model.safetensors").string(), tensors,
                      {{"format", "pt"}, {"attnlab_source", fs::absolute(hf_dir).string()}}, dtype);
    std::ofstream(folder / "config.yaml") << config::to_yaml(config);
    std::ofstream(folder / kPretrainedSettingsFile)
        << "# Written by `attnlab import`: the architecture of " << hf_dir
        << ". init_from=<this folder> applies these settings.\n"
        << config::to_yaml(pretrained);
    std::vector<std::string> copied = hf_tokenizer_files(hf_dir);
    if (fs::is_regular_file(fs::path(hf_dir) / "generation_config.json"))
      copied.push_back((fs::path(hf_dir) / "generation_config.json").string());
    for (const auto& file : copied) fs::copy_file(file, folder / fs::path(file).filename());
    int64_t parameters = 0;
    for (const auto& item : tensors) parameters += item.second.numel();
    std::ofstream(folder / "import_report.txt")
        << "source: " << fs::absolute(hf_dir).string() << " (model_type " << architecture.model_type
        << ")\n"
        << "tensors: " << tensors.size() << " (" << parameters << " parameters)\n"
        << "dtype: " << c10::toString(dtype) << "\n";
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "imported " << tensors.size() << " tensors (" << architecture.model_type << ") from "
            << hf_dir << " into " << out << " in " << seconds << " s\n"
            << "fine-tune with: attnlab train init_from=" << out << " ...\n";
  return 0;
}

}  // namespace attnlab
