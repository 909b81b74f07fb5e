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

#include <torch/arg.h>
#include <torch/torch.h>

#include <any>
#include <optional>
#include <string>
#include <vector>

#include "modules/attention.h"
#include "modules/model_output.h"

namespace attnlab {

// The `model:` group as configs write it (configs/model/gpt.yaml holds the same defaults; a test
// keeps every configs/model/*.yaml in step with this struct), bound by gpt_options_from_config;
// model.attention_per_layer (names or mappings) is read there too.
struct ModelOptions {
  TORCH_ARG(int64_t, d_model) = 128;
  TORCH_ARG(int64_t, n_layers) = 4;
  TORCH_ARG(int64_t, n_heads) = 4;
  TORCH_ARG(int64_t, n_kv_heads) = 0;
  TORCH_ARG(double, mlp_ratio) = 4.0;
  TORCH_ARG(std::string, mlp) = "gelu";
  TORCH_ARG(double, dropout) = 0.0;
  TORCH_ARG(int64_t, max_seq_len) = 256;
  TORCH_ARG(double, rope_theta) = 10000.0;
  TORCH_ARG(std::string, rope_scaling) = "none";
  TORCH_ARG(double, rope_factor) = 1.0;
  TORCH_ARG(double, rope_low_freq_factor) = 1.0;
  TORCH_ARG(double, rope_high_freq_factor) = 4.0;
  TORCH_ARG(double, rope_original_max_positions) = 8192.0;
  TORCH_ARG(double, norm_eps) = 1e-5;
  TORCH_ARG(std::optional<int64_t>, vocab_size) = std::nullopt;
  TORCH_ARG(std::string, norm) = "rms";
  TORCH_ARG(std::string, positions) = "rope";
  TORCH_ARG(int64_t, max_positions) = 0;
  TORCH_ARG(bool, tie_embeddings) = true;
  TORCH_ARG(int64_t, mlp_hidden) = 0;
  TORCH_ARG(bool, mlp_bias) = false;
  TORCH_ARG(bool, attention_bias) = false;
  TORCH_ARG(bool, qkv_bias) = false;
  TORCH_ARG(std::string, mask) = "causal";
  TORCH_ARG(int64_t, block_size) = 0;
  TORCH_ARG(std::string, attention_backend) = "auto";

 public:
  // Range checks that need several fields (or say more than a bound) are in
  // gpt_options_from_config, with their own messages.
  template <class V>
  void visit(V& v) {
    v("d_model", d_model(), "residual width");
    v("n_layers", n_layers(), "transformer blocks");
    v("n_heads", n_heads(), "query heads");
    v("n_kv_heads", n_kv_heads(), "key/value heads (grouped-query attention); 0 = n_heads");
    v("mlp_ratio", mlp_ratio(), "MLP width / d_model (when mlp_hidden is 0)");
    v("mlp", mlp(), "gelu (tanh GELU) | swiglu");
    v("dropout", dropout(), "dropout on attention and residual branches, in [0, 1)");
    v("max_seq_len", max_seq_len(), "longest sequence the model is configured for");
    v("rope_theta", rope_theta(), "RoPE base");
    v("rope_scaling", rope_scaling(),
      "RoPE context extension: none | linear (positions / rope_factor) | llama3 (Llama 3.1's)");
    v("rope_factor", rope_factor(), "the scaling factor (linear, llama3)");
    v("rope_low_freq_factor", rope_low_freq_factor(), "llama3's low-frequency factor");
    v("rope_high_freq_factor", rope_high_freq_factor(), "llama3's high-frequency factor");
    v("rope_original_max_positions", rope_original_max_positions(),
      "llama3's original context length");
    v("norm_eps", norm_eps(), "epsilon of every norm");
    v("vocab_size", vocab_size(),
      "embedding rows: max(this, the tokenizer's ids); null = the tokenizer's");
    v("norm", norm(), "rms | layer (LayerNorm with bias, GPT-2)");
    v("positions", positions(),
      "rope (rotary, inside the attention) | learned (GPT-2's position table)");
    v("max_positions", max_positions(), "rows of the learned position table; 0 = max_seq_len");
    v("tie_embeddings", tie_embeddings(), "false: a separate output head (lm_head.weight)");
    v("mlp_hidden", mlp_hidden(), "MLP width; 0 = from mlp_ratio (SwiGLU: 2/3 of it, to 8)");
    v("mlp_bias", mlp_bias(), "biases in the MLP");
    v("attention_bias", attention_bias(), "biases on every attention projection (GPT-2)");
    v("qkv_bias", qkv_bias(), "biases on q/k/v only (Qwen2)");
    v("mask", mask(), "causal | bidirectional (an encoder) | block_causal (block diffusion)");
    v("block_size", block_size(), "block_causal's block length (> 0 there)");
    v("attention_backend", attention_backend(),
      "softmax attention kernels: auto | sdpa (the device path everywhere) | native");
  }
};

struct GptOptions {
  // Each field the `model:` group sets starts at ModelOptions' default (their one home): the
  // constructors copy a ModelOptions in (modules/gpt_config.cpp), gpt_options_from_config a bound
  // one.
  GptOptions();
  explicit GptOptions(const ModelOptions& model);

  int64_t vocab_size =
      0;  // the tokenizer's ids (gpt_options_from_config: padded by model.vocab_size)
  int64_t d_model;
  int64_t n_layers;
  int64_t n_heads;
  int64_t n_kv_heads;  // 0 = n_heads
  double mlp_ratio;
  std::string mlp;  // gelu | swiglu
  double dropout;
  int64_t max_seq_len;
  double rope_theta;
  RopeScaling rope_scaling;  // model.rope_scaling + rope_factor, rope_*_freq_factor, ...
  double norm_eps;
  // Family knobs (defaults: attnlab's own model).
  std::string norm;       // rms | layer (LayerNorm with bias, GPT-2)
  std::string positions;  // rope (inside attention) | learned (GPT-2's position table)
  int64_t max_positions;  // rows of the learned position table; 0 = max_seq_len
  bool tie_embeddings;    // false: a separate lm_head.weight
  bool mlp_bias;
  bool attention_bias;  // biases on every attention projection (GPT-2)
  bool qkv_bias;        // biases on q/k/v only (Qwen2); implied by attention_bias
  int64_t mlp_hidden;   // MLP width; 0 = from mlp_ratio (SwiGLU: 2/3 of it, rounded to 8)
  std::string attention = "mha";
  // The `attention:` group bound into the module's options struct (modules/attention_entry.h);
  // empty = the module's defaults.
  std::any attention_module_options;
  MaskSpec mask;  // the model's mask (model.mask / model.block_size)
  // model.attention_backend: auto | sdpa | native (modules/attention_backend.h).
  AttentionBackend attention_backend;
  // Hybrid stacks (model.attention_per_layer): the attention module of each layer; empty = every
  // layer uses `attention`. A layer named by a bare name gets the `attention:` group when it is
  // the group's module, else that module's built-in defaults; every layer runs with the model's
  // mask.
  std::vector<std::string> layer_attention;
  // With layer_attention, each layer's module options: the group's (same module) or the
  // module's defaults, with the keys of an entry written as a mapping ({name: moh, routed_k: 2})
  // on top (the config engine completes such entries, config/group_lists.h).
  std::vector<std::any> layer_module_options;
  // Empty, or which layer's own options differ from the `attention:` group's ("layer 2's
  // attention.routed_k"): transformers classes have one attention setting for every layer.
  std::string layer_options_differ;
};

// "mha*3,moh" or a list [mha, mha, {name: moh, routed_k: 2}, moh] -> one name per layer, and in
// `params` (when given) the mapping of each layer written as one (a null node otherwise);
// UserError naming the key for a count that does not add up to n_layers, a bad repeat, an
// unknown module or a mapping without a name. Defined for YAML::Node (modules/gpt_config.cpp).
template <class ConfigTree>
std::vector<std::string> parse_layer_attention(const ConfigTree& node, int64_t n_layers,
                                               std::vector<ConfigTree>* params = nullptr);

// Reads GptOptions from a composed config: the `model:` group bound into ModelOptions (strict:
// an unknown model.* key or a wrong type is one line naming it), the `attention:` group bound
// into its module's options, and the tokenizer's vocab size (model.vocab_size pads it: the model
// has max(tokenizer ids, model.vocab_size) rows). The mask is model.mask / model.block_size
// (attention.mask / attention.block_size moved there: a config still holding them is refused by
// the config engine, config/moved_keys.h). Defined for YAML::Node (modules/gpt_config.cpp).
template <class ConfigTree>
GptOptions gpt_options_from_config(const ConfigTree& config, int64_t vocab_size);

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
