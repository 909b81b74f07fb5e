// PEFT adapter export of a LoRA run; see peft_export.h.
#include "interop/hf/peft_export.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/config_access.h"
#include "common/error.h"
#include "config/run_options.h"
#include "interop/hf/hf_model.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"

namespace attnlab {
namespace fs = std::filesystem;
using json = nlohmann::json;

PeftExportResult export_peft_adapter(const StateDict& weights, const YAML::Node& config,
                                     const LoraOptions& lora, const std::string& out) {
  const std::vector<std::string> modules = lora_module_names(weights);
  check_user(!modules.empty(),
             "export format=peft: the checkpoint has no LoRA adapters (lora_A / lora_B tensors)");
  check_user(lora.modules_to_save().empty(),
             "export format=peft: finetune.modules_to_save is not written in PEFT's format yet; "
             "export format=hf writes the merged model with them");
  const HfFamily family = hf_family(weights, config);
  check_user(family.model_type == "llama" || family.model_type == "qwen2",
             "export format=peft: the base model exports as " +
                 (family.model_type == "gpt2"
                      ? std::string("gpt2, whose fused c_attn has no per-projection adapters")
                      : "attnlab's own layout (" + family.reason + ")") +
                 ", so its adapters cannot be expressed in PEFT's format; export format=hf writes "
                 "the merged model");
  PeftExportResult result;
  result.model_type = family.model_type;
  NamedTensorList tensors;
  std::vector<std::string> targets;
  for (const std::string& module : modules) {
    const std::string hf = hf_llama_module_name(module);
    check_user(!hf.empty(), "export format=peft: the adapter on " + module +
                                " has no transformers module to load onto");
    for (const char* part : {".lora_A.weight", ".lora_B.weight"})
      tensors.emplace_back("base_model.model." + hf + part,
                           weights.at(module + part).to(torch::kCPU).contiguous());
    const std::string leaf = hf.substr(hf.rfind('.') + 1);
    if (std::find(targets.begin(), targets.end(), leaf) == targets.end()) targets.push_back(leaf);
  }
  std::sort(targets.begin(), targets.end());
  const std::string init_from = run_options(config).init_from.value_or("");
  const std::string base_folder = hf_source_folder(init_from);
  // LoraConfig's own keys only: peft warns about any other key.
  const json adapter_config = {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"r", lora.r()},
      {"lora_alpha", lora.alpha()},
      {"lora_dropout", lora.dropout()},
      {"target_modules", targets},
      {"use_rslora", lora.use_rslora()},
      {"use_dora", false},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"init_lora_weights", true},
      {"inference_mode", true},
      {"modules_to_save", nullptr},
      {"base_model_name_or_path",
       base_folder.empty() ? json(nullptr) : json(fs::absolute(base_folder).string())}};
  const fs::path final_path = fs::absolute(out);
  write_new_folder(out, "export out", [&](const fs::path& folder) {
    {
      std::ofstream config_out(folder / "adapter_config.json");
      config_out << adapter_config.dump(2) << "\n";
      check_user(static_cast<bool>(config_out),
                 "cannot write " + (folder / "adapter_config.json").string());
    }
    write_safetensors((folder / "adapter_model.safetensors").string(), tensors);
  });
  result.files = {(final_path / "adapter_config.json").string(),
                  (final_path / "adapter_model.safetensors").string()};
  result.adapters = modules.size();
  return result;
}

}  // namespace attnlab
