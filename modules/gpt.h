// `model=gpt`: a GPT-style decoder (or, with a bidirectional mask, encoder) whose attention comes
// from the attention registry by name: token embedding, pre-norm blocks with RoPE inside the
// attention, GELU or SwiGLU MLP, final norm and an output head tied to the embedding, GPT-2-style
// scaled init of the residual projections. The knobs that pretrained families differ in are
// options too, so one class covers attnlab's default model, Llama/Mistral/Qwen2-style decoders
// (SwiGLU, RMSNorm, RoPE, GQA, untied head, q/k/v biases) and GPT-2 (learned positions, LayerNorm
// with bias, biased projections); configs/model/<family>.yaml set them.
//
// Parameter names (state_dict keys): embed.weight, pos_embed.weight (positions=learned),
// blocks.<i>.attn_norm.{weight,bias}, blocks.<i>.attn.<module's own names>,
// blocks.<i>.mlp_norm.{weight,bias}, blocks.<i>.mlp.{fc_in,fc_out}.{weight,bias} (gelu) or
// blocks.<i>.mlp.{w_gate,w_up,w_down}.{weight,bias} (swiglu), final_norm.{weight,bias},
// lm_head.weight (tie_embeddings=false; tied, the head reuses embed.weight). Biases exist only
// where the options ask for them (norm=layer, mlp_bias=true).
#pragma once

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <optional>
#include <vector>

#include "modules/attention.h"
#include "modules/model_output.h"

namespace attnlab {

struct GptOptions {
  int64_t vocab_size = 0;
  int64_t d_model = 128;
  int64_t n_layers = 4;
  int64_t n_heads = 4;
  int64_t n_kv_heads = 0;  // 0 = n_heads
  double mlp_ratio = 4.0;
  std::string mlp = "gelu";  // gelu | swiglu
  double dropout = 0.0;
  int64_t max_seq_len = 256;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;  // model.rope_scaling + rope_factor, rope_*_freq_factor, ...
  double norm_eps = 1e-5;
  // Family knobs (defaults: attnlab's own model).
  std::string norm = "rms";        // rms | layer (LayerNorm with bias, GPT-2)
  std::string positions = "rope";  // rope (inside attention) | learned (GPT-2's position table)
  int64_t max_positions = 0;       // rows of the learned position table; 0 = max_seq_len
  bool tie_embeddings = true;      // false: a separate lm_head.weight
  bool mlp_bias = false;
  bool attention_bias = false;  // biases on every attention projection (GPT-2)
  bool qkv_bias = false;        // biases on q/k/v only (Qwen2); implied by attention_bias
  int64_t mlp_hidden = 0;       // MLP width; 0 = from mlp_ratio (SwiGLU: 2/3 of it, rounded to 8)
  std::string attention = "mha";
  YAML::Node attention_params;  // the composed `attention:` group
  MaskSpec mask;                // the model's mask (model.mask / model.block_size)
  // model.attention_backend: auto | sdpa | native (modules/attention_backend.h).
  AttentionBackend attention_backend = AttentionBackend::kAuto;
  // Hybrid stacks (model.attention_per_layer): the attention module of each layer; empty = every
  // layer uses `attention`. A layer named by a bare name gets the `attention:` group when it is
  // the group's module, else that module's built-in defaults; every layer runs with the model's
  // mask.
  std::vector<std::string> layer_attention;
  // Per layer, the options of an entry written as a mapping ({name: moh, routed_k: 2}), else a
  // null node. The config engine completes such entries (config/group_lists.h); the module's
  // options are then the group's (same module) or the module's defaults, with these on top.
  std::vector<YAML::Node> layer_attention_params;
};

// "mha*3,moh" or a list [mha, mha, {name: moh, routed_k: 2}, moh] -> one name per layer, and in
// `params` (when given) the mapping of each layer written as one (a null node otherwise);
// UserError naming the key for a count that does not add up to n_layers, a bad repeat, an
// unknown module or a mapping without a name.
std::vector<std::string> parse_layer_attention(const YAML::Node& node, int64_t n_layers,
                                               std::vector<YAML::Node>* params = nullptr);

// model.rope_scaling (none | linear | llama3) and its factors; UserError naming the key when out
// of range.
RopeScaling rope_scaling_from_config(const YAML::Node& config);

// Reads GptOptions from a composed config (model.*, attention.*) and the tokenizer's vocab size
// (model.vocab_size pads it: the model has max(tokenizer ids, model.vocab_size) rows). The mask
// is model.mask / model.block_size (attention.mask / attention.block_size moved there: a config
// still holding them is refused by the config engine, config/moved_keys.h).
GptOptions gpt_options_from_config(const YAML::Node& config, int64_t vocab_size);

// The options the attention module of block `layer_index` is built with (the model's sizes,
// RoPE, biases, backend and mask, the `attention:` group or, in a hybrid stack, the layer's
// module with its defaults); `attention_name` receives that module's registry name. The GPT and
// `attnlab probe` share it.
AttentionOptions attention_options_for_layer(const GptOptions& options, int64_t layer_index,
                                             std::string* attention_name);

struct ForwardOptions {
  std::optional<MaskSpec> mask;  // default: the model's configured mask
  torch::Tensor positions;       // [T] int64; default: cache length .. cache length + T - 1
  std::vector<KVCache>* caches = nullptr;  // one per block, for incremental decoding
  bool cache_commit = true;
  TapRequest taps;
};

class RmsNormImpl : public torch::nn::Module {
 public:
  RmsNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RmsNorm);

// RMSNorm (weight only) or LayerNorm (weight and bias), by GptOptions::norm.
class NormImpl : public torch::nn::Module {
 public:
  NormImpl(int64_t dim, double eps, const std::string& kind);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;

 private:
  double eps_;
  bool layer_norm_;
};
TORCH_MODULE(Norm);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t d_model, int64_t hidden, const std::string& kind, bool bias = false);
  torch::Tensor forward(const torch::Tensor& x);
  // The projection writing into the residual stream (scaled at init).
  torch::nn::Linear output_projection() const { return swiglu_ ? w_down : fc_out; }

  torch::nn::Linear fc_in{nullptr}, fc_out{nullptr};
  torch::nn::Linear w_gate{nullptr}, w_up{nullptr}, w_down{nullptr};

 private:
  bool swiglu_;
};
TORCH_MODULE(Mlp);

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const GptOptions& options, int64_t layer_index);
  // Returns the block output; fills `attention_out` with the module's extras.
  torch::Tensor forward(const torch::Tensor& x, const AttentionContext& context,
                        AttentionOutput& attention_out);

  Norm attn_norm{nullptr};
  std::shared_ptr<AttentionImpl> attn;
  Norm mlp_norm{nullptr};
  Mlp mlp{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(Block);

class GptImpl : public torch::nn::Module {
 public:
  explicit GptImpl(const GptOptions& options);
  ModelOutput forward(const torch::Tensor& tokens, const ForwardOptions& options = {});
  const GptOptions& options() const { return options_; }
  // Final-norm hidden states -> logits (the tied embedding, or lm_head).
  torch::Tensor head(const torch::Tensor& hidden) const;

  torch::nn::Embedding embed{nullptr};
  torch::nn::Embedding pos_embed{nullptr};  // positions=learned only
  std::vector<Block> blocks;
  torch::nn::ModuleList block_list{nullptr};
  Norm final_norm{nullptr};
  torch::nn::Linear lm_head{nullptr};  // tie_embeddings=false only

 private:
  void init_weights();
  GptOptions options_;
};
TORCH_MODULE(Gpt);

// Non-embedding parameter count and FLOPs per token for forward+backward (PaLM formula:
// 6·N + 12·L·T·C), used for MFU.
double gpt_flops_per_token(const GptImpl& model, int64_t seq_len);

}  // namespace attnlab
