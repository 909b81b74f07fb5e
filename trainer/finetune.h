// Parameter-efficient fine-tuning, the `finetune` config group: finetune=none (the default: every
// parameter trains, as `freeze` and `lr_multipliers` say) or finetune=lora (LoRA adapters on the
// blocks' Linear layers, modules/lora.h; only the adapters and `modules_to_save` train).
//
// apply_finetune() is the one place the adapters are added: LmTask calls it after init_from has
// loaded the base weights (training), and load_run / load_task reach it through the same task or
// build path before a checkpoint is loaded, so a LoRA run's checkpoint (base + adapters, PEFT's
// names: blocks.0.attn.q_proj.lora_A.weight) loads back into the same adapted model.
#pragma once

#include <torch/arg.h>
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config_node.h"
#include "config/option_schema.h"
#include "io/weights_io.h"
#include "modules/lora.h"

namespace attnlab {

// finetune=none (configs/finetune/none.yaml): no options besides the name.
struct NoFinetuneOptions {
  template <class V>
  void visit(V&) {}
};

// The LoRA options of `config` (finetune.name=lora), or nullopt for finetune=none or a config
// without the group. Binds the group strictly: an unknown name or key, a wrong type or a value
// out of range is one UserError line naming the key. Defined for ConfigNode.
template <class ConfigTree>
std::optional<LoraOptions> lora_options(const ConfigTree& config);

// Adds the adapters `config` asks for to `model` (a Gpt) and freezes everything else but
// modules_to_save. Returns the one-line summary ("lora: r=16 alpha=32 on 8 modules (q_proj, ...),
// trainable 12,345 of 1,234,567 parameters (1.0%)"), or "" for finetune=none. UserError naming
// finetune.target / finetune.modules_to_save when a pattern matches nothing, or a Linear it
// matches cannot carry an adapter.
std::string apply_finetune(const ConfigNode& config, torch::nn::Module& model);

}  // namespace attnlab
