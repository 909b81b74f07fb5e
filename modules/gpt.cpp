// GPT model; see gpt.h for the architecture and parameter names.
#include "modules/gpt.h"

#include <cmath>
#include <sstream>

#include "common/error.h"
#include "modules/attention_backend.h"
#include "modules/kernels/gelu_tanh.h"
#include "modules/kernels/rms_norm.h"
#include "modules/lora.h"
#include "modules/masks.h"

namespace attnlab {

NormImpl::NormImpl(int64_t dim, double eps, const std::string& kind)
    : eps_(eps), layer_norm_(kind == "layer") {
  weight = register_parameter("weight", torch::ones({dim}));
  if (layer_norm_) bias = register_parameter("bias", torch::zeros({dim}));
}

torch::Tensor NormImpl::forward(const torch::Tensor& x) {
  if (layer_norm_) return torch::layer_norm(x, {x.size(-1)}, weight, bias, eps_);
  return rms_norm(x, weight, eps_);
}

RmsNormImpl::RmsNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RmsNormImpl::forward(const torch::Tensor& x) {
  // Fused kernel for float32 CPU; the torch formula (float32 at least, cast back) otherwise.
  return rms_norm(x, weight, eps_);
}

MlpImpl::MlpImpl(int64_t d_model, int64_t hidden, const std::string& kind, bool bias)
    : swiglu_(kind == "swiglu") {
  auto linear = [bias](int64_t in, int64_t out) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
  };
  if (swiglu_) {
    w_gate = register_module("w_gate", linear(d_model, hidden));
    w_up = register_module("w_up", linear(d_model, hidden));
    w_down = register_module("w_down", linear(hidden, d_model));
  } else {
    fc_in = register_module("fc_in", linear(d_model, hidden));
    fc_out = register_module("fc_out", linear(hidden, d_model));
  }
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  if (swiglu_)
    return lora_linear(w_down, torch::silu(lora_linear(w_gate, x)) * lora_linear(w_up, x));
  return lora_linear(
      fc_out,
      gelu_tanh(lora_linear(fc_in, x)));  // fused kernel; same values as torch::gelu(x, "tanh")
}

AttentionOptions attention_options_for_layer(const GptOptions& options, int64_t layer_index,
                                             std::string* attention_name) {
  AttentionOptions attention_options;
  attention_options.d_model = options.d_model;
  attention_options.n_heads = options.n_heads;
  attention_options.n_kv_heads = options.n_kv_heads > 0 ? options.n_kv_heads : options.n_heads;
  attention_options.layer_index = layer_index;
  attention_options.n_layers = options.n_layers;
  attention_options.max_seq_len = options.max_seq_len;
  attention_options.dropout = options.dropout;
  attention_options.rope_theta = options.rope_theta;
  attention_options.rope_scaling = options.rope_scaling;
  attention_options.bias = options.attention_bias;
  attention_options.qkv_bias = options.qkv_bias;
  attention_options.backend = options.attention_backend;
  attention_options.mask = options.mask;
  attention_options.rotary_positions = options.positions == "rope";
  // The module's own options: the group's, or in a hybrid stack the layer's (bound by the config
  // reader, gpt_config.cpp: the layer's module, its own entry's keys on top).
  std::string attention = options.attention;
  attention_options.module_options = options.attention_module_options;
  if (!options.layer_attention.empty()) {
    attention = options.layer_attention[layer_index];
    if (static_cast<size_t>(layer_index) < options.layer_module_options.size())
      attention_options.module_options = options.layer_module_options[layer_index];
    else if (attention != options.attention)
      attention_options.module_options.reset();  // another module: its defaults
  }
  if (attention_name != nullptr) *attention_name = attention;
  return attention_options;
}

BlockImpl::BlockImpl(const GptOptions& options, int64_t layer_index) : dropout_(options.dropout) {
  std::string attention;
  const AttentionOptions attention_options =
      attention_options_for_layer(options, layer_index, &attention);
  attn_norm = register_module("attn_norm", Norm(options.d_model, options.norm_eps, options.norm));
  std::shared_ptr<AttentionImpl> module;
  try {
    module = make_attention(attention, attention_options);
  } catch (const UserError& e) {
    // In a hybrid stack, name the layer whose options the module refused.
    if (options.layer_attention.empty()) throw;
    throw UserError("model.attention_per_layer[" + std::to_string(layer_index) + "] (" + attention +
                    "): " + e.what());
  }
  attn = register_module("attn", module);
  mlp_norm = register_module("mlp_norm", Norm(options.d_model, options.norm_eps, options.norm));
  // SwiGLU keeps the parameter count of a GELU MLP by using 2/3 of the hidden width.
  int64_t hidden = static_cast<int64_t>(options.mlp_ratio * options.d_model);
  if (options.mlp == "swiglu") hidden = (2 * hidden / 3 + 7) / 8 * 8;
  if (options.mlp_hidden > 0) hidden = options.mlp_hidden;
  mlp = register_module("mlp", Mlp(options.d_model, hidden, options.mlp, options.mlp_bias));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, const AttentionContext& context,
                                 AttentionOutput& attention_out) {
  attention_out = attn->forward(attn_norm(x), context);
  auto h = x + torch::dropout(attention_out.y, dropout_, is_training());
  return h + torch::dropout(mlp(mlp_norm(h)), dropout_, is_training());
}

GptImpl::GptImpl(const GptOptions& options) : options_(options) {
  check_user(options.vocab_size > 0, "GPT needs a positive vocabulary size");
  embed = register_module("embed", torch::nn::Embedding(options.vocab_size, options.d_model));
  if (options.positions == "learned")
    pos_embed = register_module(
        "pos_embed", torch::nn::Embedding(
                         options.max_positions > 0 ? options.max_positions : options.max_seq_len,
                         options.d_model));
  // A ModuleList gives the state_dict keys blocks.<i>.*; `blocks` keeps typed handles.
  block_list = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.n_layers; ++i) {
    blocks.push_back(Block(options, i));
    block_list->push_back(blocks.back());
  }
  final_norm = register_module("final_norm", Norm(options.d_model, options.norm_eps, options.norm));
  if (!options.tie_embeddings)
    lm_head = register_module(
        "lm_head", torch::nn::Linear(
                       torch::nn::LinearOptions(options.d_model, options.vocab_size).bias(false)));
  init_weights();
}

void GptImpl::init_weights() {
  // GPT-2 init: N(0, 0.02) for embeddings and linear weights of the standard blocks, and
  // N(0, 0.02/sqrt(2·L)) for the projections that write into the residual stream. Each attention
  // module applies the scheme to its own parameters (AttentionImpl::reset_parameters); those with
  // an official init of their own (MoH routers, DIFF lambdas) keep it. The order of draws —
  // embeddings, then per layer the attention module's then the MLP's, then lm_head — is what
  // makes a seed give the same weights.
  torch::NoGradGuard no_grad;
  ParameterInit init;
  init.std = 0.02;
  init.residual_std = init.std / std::sqrt(2.0 * options_.n_layers);
  embed->weight.normal_(0.0, init.std);
  if (pos_embed) pos_embed->weight.normal_(0.0, 0.01);  // GPT-2's position init
  for (auto& block : blocks) {
    block->attn->reset_parameters(init);
    for (auto& item : block->mlp->named_parameters()) {
      if (item.key().size() > 5 && item.key().substr(item.key().size() - 5) == ".bias")
        item.value().zero_();
      else
        item.value().normal_(0.0, init.std);
    }
    block->mlp->output_projection()->weight.normal_(0.0, init.residual_std);
  }
  if (lm_head) lm_head->weight.normal_(0.0, init.std);
}

torch::Tensor GptImpl::head(const torch::Tensor& hidden) const {
  if (lm_head) return torch::matmul(hidden, lm_head->weight.t());
  return torch::matmul(hidden, embed->weight.t());
}

ModelOutput GptImpl::forward(const torch::Tensor& tokens, const ForwardOptions& options) {
  TORCH_CHECK(tokens.dim() == 2, "GPT expects [B, T] token ids");
  const int64_t length = tokens.size(1);
  AttentionContext context;
  context.mask = options.mask.value_or(options_.mask);
  context.cache_commit = options.cache_commit;
  if (options.positions.defined()) {
    context.positions = options.positions;
  } else {
    const int64_t start =
        (options.caches && !options.caches->empty()) ? options.caches->front().length() : 0;
    context.positions = torch::arange(start, start + length, tokens.options().dtype(torch::kLong));
    context.positions_in_order = true;
  }
  // No bound on positions: RoPE extrapolates, and length-extrapolation evals rely on that.
  if (options.caches && options.caches->size() != blocks.size())
    options.caches->resize(blocks.size());

  ModelOutput out;
  auto x = embed(tokens);
  if (pos_embed) {
    const int64_t rows = pos_embed->weight.size(0);
    // Checked on the CPU only: on a GPU the check would sync every step.
    check_user(context.positions.is_cuda() || context.positions.numel() == 0 ||
                   context.positions.max().item<int64_t>() < rows,
               "positions beyond the learned position table (model.positions=learned has " +
                   std::to_string(rows) + " rows, model.max_positions): use a shorter length");
    x = x + pos_embed(context.positions.to(x.device()));
  }
  x = torch::dropout(x, options_.dropout, is_training());
  std::map<std::string, std::pair<torch::Tensor, int64_t>> aux_sums;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const int64_t layer = static_cast<int64_t>(i);
    context.cache = options.caches ? &(*options.caches)[i] : nullptr;
    context.need_probs = options.taps.prob_layers.count(layer) > 0;
    AttentionOutput attention_out;
    x = blocks[i]->forward(x, context, attention_out);
    if (options.taps.hidden_layers.count(layer)) out.hidden[layer] = x;
    if (context.need_probs) out.probs[layer] = attention_out.probs;
    for (auto& [name, value] : attention_out.aux_losses) {
      auto& slot = aux_sums[name];
      slot.first = slot.first.defined() ? slot.first + value : value;
      slot.second += 1;
    }
    for (auto& [name, value] : attention_out.stats)
      out.stats["layer" + std::to_string(layer) + "/" + name] = value;
  }
  for (auto& [name, slot] : aux_sums) out.aux_losses[name] = slot.first / slot.second;
  if (options.taps.logits) out.logits = head(final_norm(x));
  return out;
}

double gpt_flops_per_token(const GptImpl& model, int64_t seq_len) {
  // PaLM appendix B: 6·N (N = non-embedding parameters; the head's matmul adds 6·V·C, counted in
  // N when it has its own lm_head) plus 12·L·T·C for attention scores and values, forward +
  // backward. Embedding lookups are not matmuls.
  const GptOptions& o = model.options();
  double params = 0;
  for (const auto& p : model.parameters()) params += static_cast<double>(p.numel());
  params -= static_cast<double>(model.embed->weight.numel());
  if (model.pos_embed) params -= static_cast<double>(model.pos_embed->weight.numel());
  const double head = model.lm_head ? 0.0 : static_cast<double>(o.vocab_size * o.d_model);
  return 6.0 * (params + head) + 12.0 * o.n_layers * seq_len * o.d_model;
}

}  // namespace attnlab
