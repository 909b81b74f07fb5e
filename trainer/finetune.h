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
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/option_schema.h"
#include "modules/lora.h"
#include "trainer/weights_io.h"

namespace attnlab {

// finetune=none (configs/finetune/none.yaml): no options besides the name.
struct NoFinetuneOptions {
  template <class V>
  void visit(V&) {}
};

// finetune=lora (configs/finetune/lora.yaml holds the same values; a test keeps them equal).
struct LoraOptions {
  TORCH_ARG(int64_t, r) = 16;
  TORCH_ARG(double, alpha) = 32.0;
  TORCH_ARG(double, dropout) = 0.0;
  TORCH_ARG(std::vector<std::string>, target) = std::vector<std::string>{"q_proj", "k_proj",
                                                                         "v_proj", "out_proj"};
  TORCH_ARG(bool, use_rslora) = false;
  TORCH_ARG(std::vector<std::string>, modules_to_save) = std::vector<std::string>{};

 public:
  template <class V>
  void visit(V& v) {
    v("r", r(), "rank of the adapters (A: [r, in], B: [out, r])", config::greater_than(0));
    v("alpha", alpha(), "scale numerator: the low-rank path is multiplied by alpha / r",
      config::greater_than(0.0), config::finite());
    v("dropout", dropout(), "dropout on the adapters' input (training only)", config::at_least(0.0),
      config::less_than(1.0));
    v("target", target(),
      "Linear layers to adapt: names matched against the end of a Linear's name (q_proj matches "
      "blocks.3.attn.q_proj; globs allowed), or all-linear (every Linear of the blocks: attention "
      "and MLP, never the output head)",
      config::non_empty());
    v("use_rslora", use_rslora(), "rank-stabilised scale alpha / sqrt(r) instead of alpha / r");
    v("modules_to_save", modules_to_save(),
      "globs of parameter names that train fully beside the adapters (e.g. final_norm.*)");
  }

  LoraAdapterOptions adapter() const {
    LoraAdapterOptions out;
    out.r = r_;
    out.alpha = alpha_;
    out.dropout = dropout_;
    out.use_rslora = use_rslora_;
    return out;
  }
};

// The LoRA options of `config` (finetune.name=lora), or nullopt for finetune=none or a config
// without the group. Binds the group strictly: an unknown name or key, a wrong type or a value
// out of range is one UserError line naming the key. Defined for YAML::Node.
template <class ConfigTree>
std::optional<LoraOptions> lora_options(const ConfigTree& config);

// Adds the adapters `config` asks for to `model` (a Gpt) and freezes everything else but
// modules_to_save. Returns the one-line summary ("lora: r=16 alpha=32 on 8 modules (q_proj, ...),
// trainable 12,345 of 1,234,567 parameters (1.0%)"), or "" for finetune=none. UserError naming
// finetune.target / finetune.modules_to_save when a pattern matches nothing, or a Linear it
// matches cannot carry an adapter.
std::string apply_finetune(const YAML::Node& config, torch::nn::Module& model);

// The adapted Linear layers of a LoRA state dict ("blocks.0.attn.q_proj", ...), in name order.
std::vector<std::string> lora_module_names(const TensorMap& weights);

// The weights with every adapter merged into its base (W + scale * B A, computed in float64)
// and the lora_A / lora_B tensors removed: the plain model that `export format=hf` writes.
TensorMap merge_lora_weights(const TensorMap& weights, const LoraOptions& options);

}  // namespace attnlab
