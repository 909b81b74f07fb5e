// `attnlab export format=peft`: a LoRA run's adapters as a PEFT adapter folder that
// peft.PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), folder) loads onto the
// transformers model its base exports as (export format=hf, or the Hugging Face folder it was
// fine-tuned from):
//   adapter_config.json        peft's LoraConfig: peft_type LORA, r, lora_alpha, lora_dropout,
//                              target_modules (the transformers names of the adapted layers),
//                              use_rslora, bias none, task_type CAUSAL_LM, base_model_name_or_path
//   adapter_model.safetensors  base_model.model.<transformers module>.lora_{A,B}.weight
// The adapted Linear layers keep their shapes under the Llama/Qwen2 names (hf_llama_module_name),
// so the tensors are copied as they are. A base exporting as GPT-2 (fused c_attn) or attnlab's own
// layout (moh, diff, ... have no transformers class), or modules_to_save, cannot be expressed in
// PEFT's format yet: one UserError line.
#pragma once

#include <string>
#include <vector>

#include "io/weights_io.h"
#include "modules/lora.h"

namespace attnlab {

struct PeftExportResult {
  std::string model_type;  // llama | qwen2: the transformers family of the base
  std::vector<std::string> files;
  size_t adapters = 0;  // adapted Linear layers
};

// Writes the adapters among `weights` (a LoRA run's model state, attnlab names) of a run with
// `config` (its composed config; `lora` its bound finetune group) to the new folder `out`,
// complete or not at all.
PeftExportResult export_peft_adapter(const StateDict& weights, const YAML::Node& config,
                                     const LoraOptions& lora, const std::string& out);

}  // namespace attnlab
