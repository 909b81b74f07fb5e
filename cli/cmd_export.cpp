// `attnlab export run_dir=<run dir | checkpoint file | import folder>
// [checkpoint=best|latest|<path>] [format=pt|hf] [out=...] [dtype=float32|bfloat16|float16]
// [max_shard_size=5GB]`:
//   format=pt (default): the model's state_dict as a plain {name: tensor} dict that Python reads
//     with torch.load(out) and feeds to model.load_state_dict. Default out: <run_dir>/model.pt
//     (next to the checkpoint for a file).
//   format=hf: a Hugging Face folder (config.json + model.safetensors, sharded above
//     max_shard_size, plus the run's tokenizer.json when it used tokenizer=hf) that
//     transformers.AutoModelForCausalLM.from_pretrained loads; models no transformers class
//     reproduces keep attnlab's names (interop/hf/hf_model.h). Default out: <run_dir>/hf.
//   format=peft: a LoRA run's (finetune=lora) adapters as a PEFT adapter folder
//     (adapter_config.json + adapter_model.safetensors, interop/hf/peft_export.h) for the
//     transformers model its base exports as. Default out: <run_dir>/peft. format=hf of a LoRA run
//     writes the merged model (W + scale * B A), format=pt the adapted state dict as it is.
// The checkpoint is chosen as `eval` and `sample` choose it (default best: best.ckpt, else latest).
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "cli/command_options.h"
#include "common/config_access.h"
#include "config/moved_keys.h"
#include "config/yaml_io.h"
#include "data/tokenizers/tokenizer_options.h"
#include "interop/hf/hf_model.h"
#include "interop/hf/peft_export.h"
#include "interop/hf/pretrained_config.h"
#include "io/atomic_file.h"
#include "io/weights_io.h"
#include "trainer/checkpoint.h"
#include "trainer/finetune.h"
#include "trainer/run_setup.h"
#include "trainer/task.h"
#include "trainer/weight_sources.h"

namespace attnlab {
namespace fs = std::filesystem;

namespace {

// "5GB", "500MB", "64KB", "123" (bytes) -> bytes.
uint64_t parse_byte_size(const std::string& text) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::map<std::string, double> units = {
      {"", 1},     {"B", 1},        {"KB", 1e3},        {"MB", 1e6},
      {"GB", 1e9}, {"KIB", 1024.0}, {"MIB", 1048576.0}, {"GIB", 1073741824.0}};
  check_user(used > 0 && value > 0 && units.count(unit),
             "attnlab export: max_shard_size='" + text + "': expected a size such as 5GB or 500MB");
  return static_cast<uint64_t>(value * units.at(unit));
}

// The tokenizer files of a run that used tokenizer=hf, to travel with an exported folder.
std::vector<std::string> run_tokenizer_files(const YAML::Node& config) {
  if (!cfg::has(config, "tokenizer.name")) return {};
  const TokenizerOptions tokenizer = tokenizer_options(config);
  const auto* hf = std::get_if<HfTokenizerConfigOptions>(&tokenizer);
  if (hf == nullptr || !hf->path() || hf->path()->empty()) return {};
  fs::path path = *hf->path();
  const bool folder = fs::is_directory(path);
  std::vector<std::string> files =
      hf_tokenizer_files((folder ? path : path.parent_path()).string());
  if (!folder && path.filename() != "tokenizer.json") files.push_back(path.string());
  return files;
}

// `attnlab export`'s keys (see the top of this file).
struct ExportCommandOptions {
  TORCH_ARG(std::optional<std::string>, run_dir) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, out) = std::nullopt;
  TORCH_ARG(std::string, checkpoint) = "best";
  TORCH_ARG(std::string, format) = "pt";
  TORCH_ARG(std::optional<std::string>, dtype) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, max_shard_size) = std::nullopt;

 public:
  template <class V>
  void visit(V& v) {
    v("run_dir", run_dir(), "a run directory, a checkpoint file or an imported folder (required)");
    v("out", out(), "the file (pt) or new folder (hf, peft); default next to the run");
    v("checkpoint", checkpoint(), "best | latest | a checkpoint file");
    v("format", format(), "pt: a torch.load-able dict; hf: a transformers folder; peft: adapters",
      config::one_of({"pt", "hf", "peft"}));
    v("dtype", dtype(), "format=hf: float32 (default), bfloat16 or float16");
    v("max_shard_size", max_shard_size(), "format=hf: largest safetensors shard (default 5GB)");
  }
};

}  // namespace

int run_export_command(const CommandArgs& args) {
  const auto options = bind_command_options<ExportCommandOptions>("export", args.overrides);
  const std::string& source = required_option("export", "run_dir", options.run_dir());
  const std::string& format = options.format();
  // `out=` (empty) wrote ./.tmp and failed; a folder as a format=pt file left <folder>.tmp.
  check_user(!options.out() || !options.out()->empty(),
             "attnlab export: out= is empty; give a file (format=pt) or a folder (format=hf), or "
             "leave out= off for the default next to the run");
  if (format == "pt" && options.out()) {
    std::error_code error;
    check_user(!std::filesystem::is_directory(*options.out(), error),
               "attnlab export: out='" + *options.out() +
                   "' is a folder, and format=pt writes one file; name a file (e.g. out=" +
                   (std::filesystem::path(*options.out()) / "model.pt").string() +
                   ") or use format=hf for a folder");
  }
  // A folder `attnlab import` wrote: its safetensors and config.yaml.
  const bool import_folder = is_import_folder(source);
  std::string origin = source;
  StateDict weights;
  YAML::Node config;
  if (import_folder) {
    weights = read_weights(source);
    config = config::load_saved_config((fs::path(source) / "config.yaml").string());
  } else {
    origin = choose_checkpoint(source, options.checkpoint());
    std::string config_yaml;
    weights = read_checkpoint_model_state(origin);
    if (format != "pt") {
      read_checkpoint_state(origin, &config_yaml);
      config = config::parse_saved_config(config_yaml, origin);
    }
  }
  const fs::path base =
      fs::is_directory(source) ? fs::path(source) : fs::path(source).parent_path();
  if (format == "pt") {
    check_user(!options.dtype() && !options.max_shard_size(),
               "attnlab export: dtype= and max_shard_size= apply to format=hf only");
    const std::string out = options.out().value_or((base / "model.pt").string());
    save_weights_file(out, weights);
    std::cout << "exported " << weights.size() << " tensors from " << origin << " to " << out
              << "\n";
    return 0;
  }
  const std::optional<LoraOptions> lora = lora_options(config);
  if (format == "peft") {
    check_user(!options.dtype() && !options.max_shard_size(),
               "attnlab export: dtype= and max_shard_size= apply to format=hf only");
    check_user(lora.has_value(), "attnlab export: format=peft writes LoRA adapters, and " + origin +
                                     " was not trained with finetune=lora");
    const std::string out = options.out().value_or((base / "peft").string());
    const PeftExportResult result = export_peft_adapter(weights, config, *lora, out);
    std::cout << "exported " << result.adapters << " LoRA adapters from " << origin << " to " << out
              << " for a " << result.model_type << " base\n";
    return 0;
  }
  // A LoRA run exports as the plain model it computes: each adapter merged into its base.
  if (lora) weights = merge_lora_weights(weights, *lora);
  const std::string task = task_name(config);
  check_user(task == "lm", "attnlab export: format=hf writes a causal language model, and " +
                               origin + " is a '" + task + "' run: export it with format=pt");
  HfExportOptions hf_options;
  hf_options.dtype = parse_weights_dtype(options.dtype().value_or("float32"), "export");
  if (options.max_shard_size())
    hf_options.max_shard_bytes = parse_byte_size(*options.max_shard_size());
  const std::string out = options.out().value_or((base / "hf").string());
  const HfExportResult result =
      export_hf_folder(weights, config, out, hf_options, run_tokenizer_files(config));
  std::cout << "exported " << result.tensors << " tensors from " << origin << " to " << out
            << " as " << result.model_type
            << (result.reason.empty() ? "" : " (attnlab's layout: " + result.reason + ")") << "\n";
  return 0;
}

}  // namespace attnlab
