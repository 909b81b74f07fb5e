// Hugging Face checkpoints in and out: a transformers folder (config.json + safetensors, sharded
// or not) <-> attnlab's model settings and tensor names.
//
// Families: llama, mistral and qwen2 (LlamaForCausalLM's layout: RMSNorm, RoPE rotate-half,
// SwiGLU, GQA, optional q/k/v biases) and gpt2 (learned positions, LayerNorm, Conv1D weights
// stored [in, out], fused c_attn). Their names map 1:1 onto attnlab's GPT (modules/gpt.h):
//   model.embed_tokens / transformer.wte        -> embed.weight
//   transformer.wpe                             -> pos_embed.weight
//   layers.<i>.input_layernorm / h.<i>.ln_1     -> blocks.<i>.attn_norm
//   self_attn.{q,k,v}_proj, o_proj              -> attn.{q,k,v}_proj, attn.out_proj
//   attn.c_attn [d, 3d] (q|k|v), attn.c_proj    -> attn.{q,k,v}_proj (split, transposed), out_proj
//   post_attention_layernorm / ln_2             -> blocks.<i>.mlp_norm
//   mlp.{gate,up,down}_proj / mlp.{c_fc,c_proj} -> mlp.{w_gate,w_up,w_down} / mlp.{fc_in,fc_out}
//   model.norm / transformer.ln_f               -> final_norm;  lm_head -> lm_head (untied only)
// Imported tensors are views of the mapped files (GPT-2's transposes and splits too), so a
// model is never held in memory twice.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "config/config_node.h"
#include "io/weights_io.h"
#include "modules/gpt.h"

namespace attnlab {

// What a Hugging Face folder's config.json says, as attnlab settings.
struct HfArchitecture {
  std::string folder;
  std::string model_type;  // llama | mistral | qwen2 | gpt2
  // Config overrides that build the same architecture ("model.d_model" -> "64"; the tokenizer
  // group and its path when the folder has a tokenizer.json).
  std::vector<std::pair<std::string, std::string>> settings;
  int64_t vocab_size = 0;
};

// Reads <folder>/config.json. UserError naming the file for a missing or malformed file, an
// unknown model_type, or a setting attnlab cannot reproduce exactly (rope scaling, a head_dim
// that is not hidden_size / heads, another activation, sliding windows in use...).
HfArchitecture read_hf_architecture(const std::string& folder);

// `init_from=hf:<folder>`: the folder behind the prefix, or "" for any other source.
std::string hf_source_folder(const std::string& init_from);

// The tensors of a Hugging Face folder under attnlab's names. Tensors that have no place in
// attnlab's model go to `unmapped` (known buffers such as rotary inv_freq or GPT-2's causal
// `attn.bias` are dropped silently).
struct HfWeights {
  StateDict tensors;
  std::vector<std::string> unmapped;
};
HfWeights read_hf_weights(const HfArchitecture& architecture);

// The tensors (attnlab names -> shapes) of the model these settings build: `attnlab import`
// checks a folder against it without building the model (so a 1B import never initialises 1B
// random weights). tests/interop/hf checks it against built models of every family.
std::map<std::string, std::vector<int64_t>> expected_attnlab_shapes(
    const HfArchitecture& architecture);

// The tokenizer files of a Hugging Face folder that exist (tokenizer.json, tokenizer_config.json,
// special_tokens_map.json), copied along by import and export.
std::vector<std::string> hf_tokenizer_files(const std::string& folder);

// `dtype=` of import and export: float32 | bfloat16 | float16 (or fp32, bf16, fp16); UserError
// naming `command` otherwise.
torch::ScalarType parse_weights_dtype(const std::string& text, const std::string& command);

struct HfExportOptions {
  torch::ScalarType dtype = torch::kFloat32;
  uint64_t max_shard_bytes = 5ull << 30;  // transformers' default shard size
};

// The transformers family a model's weights and config export as: llama | qwen2 | gpt2, or
// attnlab (attnlab's own layout) with the reason no transformers class reproduces it.
struct HfFamily {
  std::string model_type;
  std::string reason;
};
HfFamily hf_family(const StateDict& weights, const ConfigNode& config);

// The transformers module of one of attnlab's block Linear layers in the Llama/Qwen2 layout
// ("blocks.3.attn.out_proj" -> "model.layers.3.self_attn.o_proj", "blocks.0.mlp.w_up" ->
// "model.layers.0.mlp.up_proj"); "" for a name with no such module.
std::string hf_llama_module_name(const std::string& attnlab_module);

struct HfExportResult {
  std::string model_type;  // llama | qwen2 | gpt2 | attnlab
  std::string reason;      // why attnlab's own layout was used ("" for a transformers family)
  std::vector<std::string> files;
  size_t tensors = 0;
};

// Writes `weights` (attnlab names) of a model built from `config` (a run's composed config) to
// the new folder `out`: config.json + model.safetensors (or shards + index). A model that a
// transformers class reproduces (llama, qwen2, gpt2) gets that class's names and config; any other
// (MoH, DIFF, GDA, LSSA, hybrids, attnlab's GELU default) keeps attnlab's names with a config.json
// whose model_type is "attnlab" and that carries the attnlab settings. The folder is written
// under a temporary name and renamed, so it is complete or absent. `tokenizer_files` are copied.
HfExportResult export_hf_folder(const StateDict& weights, const ConfigNode& config,
                                const std::string& out, const HfExportOptions& options,
                                const std::vector<std::string>& tokenizer_files = {});

}  // namespace attnlab
