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
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "common/error.h"
#include "trainer/cli/command.h"
#include "trainer/cli/command_options.h"
#include "trainer/config/config.h"
#include "trainer/config/yaml_io.h"
#include "trainer/hf/hf_model.h"
#include "trainer/hf/pretrained_config.h"
#include "trainer/hf/safetensors.h"

namespace attnlab {
namespace fs = std::filesystem;

torch::ScalarType parse_weights_dtype(const std::string& text, const std::string& command) {
  if (text == "float32" || text == "fp32") return torch::kFloat32;
  if (text == "bfloat16" || text == "bf16") return torch::kBFloat16;
  if (text == "float16" || text == "fp16") return torch::kFloat16;
  throw UserError("attnlab " + command + ": dtype='" + text +
                  "': expected float32, bfloat16 or float16");
}

namespace {

// Tokenizer files a Hugging Face folder may carry, copied along.
std::vector<std::string> tokenizer_files_in(const fs::path& folder) {
  std::vector<std::string> files;
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                           "generation_config.json"}) {
    std::error_code error;
    if (fs::is_regular_file(folder / name, error)) files.push_back((folder / name).string());
  }
  return files;
}

}  // namespace

int run_import_command(const CommandArgs& args) {
  CommandOptions options("import", args.overrides, {"hf_dir", "out", "dtype"});
  const std::string hf_dir = options.get("hf_dir");
  const std::string out = options.get("out");
  const torch::ScalarType dtype = parse_weights_dtype(options.get_or("dtype", "float32"), "import");
  std::error_code error;
  check_user(
      !fs::exists(out, error) || (fs::is_directory(out, error) && fs::is_empty(out, error)),
      "attnlab import: out='" + out + "' already exists and is not empty; choose a new folder");
  const auto start = std::chrono::steady_clock::now();

  const HfArchitecture architecture = read_hf_architecture(hf_dir);
  HfWeights hf = read_hf_weights(architecture);
  config::ComposeRequest request;
  request.config_dir = args.config_dir;
  for (const auto& [key, value] : architecture.settings)
    if (key.rfind("tokenizer", 0) != 0) request.overrides.push_back(key + "=" + value);
  YAML::Node config = config::compose(request);
  // Checked against the tensors these settings build, without building the model.
  LoadReport report;
  const auto expected = expected_attnlab_shapes(architecture);
  for (const auto& [name, shape] : expected) {
    auto it = hf.tensors.find(name);
    if (it == hf.tensors.end())
      report.missing.push_back(name);
    else if (it->second.sizes().vec() != shape)
      report.mismatched.push_back(name + ": weights " + c10::str(it->second.sizes()) +
                                  " vs model " + c10::str(c10::IntArrayRef(shape)));
    else
      report.loaded.push_back(name);
  }
  for (const auto& item : hf.tensors)
    if (!expected.count(item.first)) report.unexpected.push_back(item.first);
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

  const fs::path partial = final_path.parent_path() / ("." + final_path.filename().string() +
                                                       ".partial-" + std::to_string(::getpid()));
  fs::remove_all(partial, error);
  try {
    fs::create_directories(partial);
    write_safetensors((partial / "model.safetensors").string(), tensors,
                      {{"format", "pt"}, {"attnlab_source", fs::absolute(hf_dir).string()}}, dtype);
    std::ofstream(partial / "config.yaml") << config::to_yaml(config);
    std::ofstream(partial / kPretrainedSettingsFile)
        << "# Written by `attnlab import`: the architecture of " << hf_dir
        << ". init_from=<this folder> applies these settings.\n"
        << config::to_yaml(pretrained);
    for (const auto& file : tokenizer_files_in(hf_dir))
      fs::copy_file(file, partial / fs::path(file).filename());
    int64_t parameters = 0;
    for (const auto& item : tensors) parameters += item.second.numel();
    std::ofstream report_file(partial / "import_report.txt");
    report_file << "source: " << fs::absolute(hf_dir).string() << " (model_type "
                << architecture.model_type << ")\n"
                << "tensors: " << tensors.size() << " (" << parameters << " parameters)\n"
                << "dtype: " << c10::toString(dtype) << "\n";
    report_file.close();
    if (fs::exists(final_path, error)) fs::remove(final_path);  // the empty folder
    fs::rename(partial, final_path);
  } catch (...) {
    fs::remove_all(partial, error);
    throw;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "imported " << tensors.size() << " tensors (" << architecture.model_type << ") from "
            << hf_dir << " into " << out << " in " << seconds << " s\n"
            << "fine-tune with: attnlab train init_from=" << out << " ...\n";
  return 0;
}

}  // namespace attnlab
