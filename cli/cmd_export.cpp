// `attnlab export run_dir=<run dir | checkpoint file | import folder>
// [checkpoint=best|latest|<path>] [format=pt|hf] [out=...] [dtype=float32|bfloat16|float16]
// [max_shard_size=5GB]`:
//   format=pt (default): the model's state_dict as a plain {name: tensor} dict that Python reads
//     with torch.load(out) and feeds to model.load_state_dict. Default out: <run_dir>/model.pt
//     (next to the checkpoint for a file).
//   format=hf: a Hugging Face folder (config.json + model.safetensors, sharded above
//     max_shard_size, plus the run's tokenizer.json when it used tokenizer=hf) that
//     transformers.AutoModelForCausalLM.from_pretrained loads; models no transformers class
//     reproduces keep attnlab's names (trainer/hf/hf_model.h). Default out: <run_dir>/hf.
//   format=peft: a LoRA run's (finetune=lora) adapters as a PEFT adapter folder
//     (adapter_config.json + adapter_model.safetensors, trainer/hf/peft_export.h) for the
//     transformers model its base exports as. Default out: <run_dir>/peft. format=hf of a LoRA run
//     writes the merged model (W + scale * B A), format=pt the adapted state dict as it is.
// The checkpoint is chosen as `eval` and `sample` choose it (default best: best.ckpt, else latest).
#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "cli/command_options.h"
#include "common/config_access.h"
#include "config/moved_keys.h"
#include "config/yaml_io.h"
#include "trainer/atomic_file.h"
#include "trainer/checkpoint.h"
#include "trainer/finetune.h"
#include "trainer/hf/hf_model.h"
#include "trainer/hf/peft_export.h"
#include "trainer/hf/pretrained_config.h"
#include "trainer/run_setup.h"
#include "trainer/task.h"
#include "trainer/weight_sources.h"
#include "trainer/weights_io.h"

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
  if (cfg::get_or<std::string>(config, "tokenizer.name", "") != "hf") return {};
  fs::path path = cfg::get_or<std::string>(config, "tokenizer.path", "");
  if (path.empty()) return {};
  const bool folder = fs::is_directory(path);
  std::vector<std::string> files =
      hf_tokenizer_files((folder ? path : path.parent_path()).string());
  if (!folder && path.filename() != "tokenizer.json") files.push_back(path.string());
  return files;
}

}  // namespace

int run_export_command(const CommandArgs& args) {
  CommandOptions options("export", args.overrides,
                         {"run_dir", "out", "checkpoint", "format", "dtype", "max_shard_size"});
  const std::string source = options.get("run_dir");
  const std::string format = options.get_or("format", "pt");
  check_user(format == "pt" || format == "hf" || format == "peft",
             "attnlab export: format='" + format + "': expected pt, hf or peft");
  // `out=` (empty) wrote ./.tmp and failed; a folder as a format=pt file left <folder>.tmp.
  check_user(!options.has("out") || !options.get("out").empty(),
             "attnlab export: out= is empty; give a file (format=pt) or a folder (format=hf), or "
             "leave out= off for the default next to the run");
  if (format == "pt" && options.has("out")) {
    std::error_code error;
    check_user(!std::filesystem::is_directory(options.get("out"), error),
               "attnlab export: out='" + options.get("out") +
                   "' is a folder, and format=pt writes one file; name a file (e.g. out=" +
                   (std::filesystem::path(options.get("out")) / "model.pt").string() +
                   ") or use format=hf for a folder");
  }
  // A folder `attnlab import` wrote: its safetensors and config.yaml.
  const bool import_folder = fs::is_regular_file(fs::path(source) / kPretrainedSettingsFile) &&
                             fs::is_regular_file(fs::path(source) / "config.yaml");
  std::string origin = source;
  TensorMap weights;
  YAML::Node config;
  if (import_folder) {
    weights = read_weights(source);
    config = config::load_saved_config((fs::path(source) / "config.yaml").string());
  } else {
    origin = choose_checkpoint(source, options.get_or("checkpoint", "best"));
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
    check_user(!options.has("dtype") && !options.has("max_shard_size"),
               "attnlab export: dtype= and max_shard_size= apply to format=hf only");
    const std::string out = options.get_or("out", (base / "model.pt").string());
    save_weights_file(out, weights);
    std::cout << "exported " << weights.size() << " tensors from " << origin << " to " << out
              << "\n";
    return 0;
  }
  const std::optional<LoraOptions> lora = lora_options(config);
  if (format == "peft") {
    check_user(!options.has("dtype") && !options.has("max_shard_size"),
               "attnlab export: dtype= and max_shard_size= apply to format=hf only");
    check_user(lora.has_value(), "attnlab export: format=peft writes LoRA adapters, and " + origin +
                                     " was not trained with finetune=lora");
    const std::string out = options.get_or("out", (base / "peft").string());
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
  hf_options.dtype = parse_weights_dtype(options.get_or("dtype", "float32"), "export");
  if (options.has("max_shard_size"))
    hf_options.max_shard_bytes = parse_byte_size(options.get("max_shard_size"));
  const std::string out = options.get_or("out", (base / "hf").string());
  const HfExportResult result =
      export_hf_folder(weights, config, out, hf_options, run_tokenizer_files(config));
  std::cout << "exported " << result.tensors << " tensors from " << origin << " to " << out
            << " as " << result.model_type
            << (result.reason.empty() ? "" : " (attnlab's layout: " + result.reason + ")") << "\n";
  return 0;
}

}  // namespace attnlab
