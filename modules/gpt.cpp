// GPT model; see gpt.h for the architecture and parameter names.
#include "modules/gpt.h"

#include <cmath>
#include <sstream>

#include "common/config_access.h"
#include "config/yaml_tree.h"
#include "modules/attention_backend.h"
#include "modules/kernels/gelu_tanh.h"
#include "modules/kernels/rms_norm.h"
#include "modules/masks.h"

namespace attnlab {

namespace {

// A double as a config value would print it (2, -0.5, 1e+38), for error messages.
std::string format_number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

}  // namespace

RopeScaling rope_scaling_from_config(const YAML::Node& config) {
  RopeScaling r;
  r.type = cfg::get_or<std::string>(config, "model.rope_scaling", "none");
  r.factor = cfg::get_or<double>(config, "model.rope_factor", 1.0);
  r.low_freq_factor = cfg::get_or<double>(config, "model.rope_low_freq_factor", 1.0);
  r.high_freq_factor = cfg::get_or<double>(config, "model.rope_high_freq_factor", 4.0);
  r.original_max_positions =
      cfg::get_or<double>(config, "model.rope_original_max_positions", 8192.0);
  check_user(r.type == "none" || r.type == "linear" || r.type == "llama3",
             "model.rope_scaling: expected none, linear or llama3, got '" + r.type + "'");
  check_user(std::isfinite(r.factor) && r.factor > 0.0,
             "model.rope_factor: expected a positive number, got " + format_number(r.factor));
  check_user(r.type != "llama3" || (r.high_freq_factor > r.low_freq_factor &&
                                    r.low_freq_factor > 0.0 && r.original_max_positions > 0.0),
             "model.rope_scaling=llama3 needs 0 < model.rope_low_freq_factor < "
             "model.rope_high_freq_factor and model.rope_original_max_positions > 0");
  return r;
}

GptOptions gpt_options_from_config(const YAML::Node& config, int64_t vocab_size) {
  GptOptions o;
  o.vocab_size = vocab_size;
  o.d_model = cfg::get<int64_t>(config, "model.d_model");
  o.n_layers = cfg::get<int64_t>(config, "model.n_layers");
  o.n_heads = cfg::get<int64_t>(config, "model.n_heads");
  o.n_kv_heads = cfg::get_or<int64_t>(config, "model.n_kv_heads", 0);
  o.mlp_ratio = cfg::get_or<double>(config, "model.mlp_ratio", 4.0);
  o.mlp = cfg::get_or<std::string>(config, "model.mlp", "gelu");
  o.dropout = cfg::get_or<double>(config, "model.dropout", 0.0);
  o.max_seq_len = cfg::get<int64_t>(config, "model.max_seq_len");
  o.rope_theta = cfg::get_or<double>(config, "model.rope_theta", 10000.0);
  o.rope_scaling = rope_scaling_from_config(config);
  o.norm_eps = cfg::get_or<double>(config, "model.norm_eps", 1e-5);
  o.norm = cfg::get_or<std::string>(config, "model.norm", "rms");
  o.positions = cfg::get_or<std::string>(config, "model.positions", "rope");
  o.max_positions = cfg::get_or<int64_t>(config, "model.max_positions", 0);
  o.tie_embeddings = cfg::get_or<bool>(config, "model.tie_embeddings", true);
  o.mlp_bias = cfg::get_or<bool>(config, "model.mlp_bias", false);
  o.attention_bias = cfg::get_or<bool>(config, "model.attention_bias", false);
  o.qkv_bias = o.attention_bias || cfg::get_or<bool>(config, "model.qkv_bias", false);
  o.mlp_hidden = cfg::get_or<int64_t>(config, "model.mlp_hidden", 0);
  // model.vocab_size pads the vocabulary (pretrained models round it up); the tokenizer's ids
  // always fit, so a smaller value (a tokenizer that appends MASK) gives the tokenizer's count.
  const int64_t model_vocab = cfg::get_or<int64_t>(config, "model.vocab_size", 0);
  check_user(model_vocab >= 0, "model.vocab_size: expected a positive count or null, got " +
                                   std::to_string(model_vocab));
  o.vocab_size = std::max(vocab_size, model_vocab);
  o.attention = cfg::get<std::string>(config, "attention.name");
  o.attention_params = cfg::require(config, "attention");
  o.mask.kind = parse_mask_kind(cfg::get_or<std::string>(config, "model.mask", "causal"));
  o.mask.block_size = cfg::get_or<int64_t>(config, "model.block_size", 0);
  o.attention_backend =
      parse_attention_backend(cfg::get_or<std::string>(config, "model.attention_backend", "auto"));
  check_user(o.d_model > 0 && o.n_layers > 0 && o.n_heads > 0,
             "model.d_model, model.n_layers and model.n_heads must be positive");
  // Checked here, where they are parsed: out of range they abort inside LibTorch or build
  // zero-width layers.
  check_user(std::isfinite(o.dropout) && o.dropout >= 0.0 && o.dropout < 1.0,
             "model.dropout: expected a probability in [0, 1), got " + format_number(o.dropout));
  check_user(std::isfinite(o.mlp_ratio) && o.mlp_ratio > 0.0 &&
                 o.mlp_ratio * static_cast<double>(o.d_model) >= 1.0,
             "model.mlp_ratio: expected a ratio > 0 giving an MLP width of at least 1, got " +
                 format_number(o.mlp_ratio));
  check_user(o.max_seq_len > 0,
             "model.max_seq_len: expected a positive length, got " + std::to_string(o.max_seq_len));
  check_user(o.n_kv_heads >= 0,
             "model.n_kv_heads: expected >= 0 (0 = n_heads), got " + std::to_string(o.n_kv_heads));
  check_user(std::isfinite(o.rope_theta) && o.rope_theta > 0.0,
             "model.rope_theta: expected a positive number, got " + format_number(o.rope_theta));
  check_user(std::isfinite(o.norm_eps) && o.norm_eps >= 0.0,
             "model.norm_eps: expected a number >= 0, got " + format_number(o.norm_eps));
  check_user(o.mlp == "gelu" || o.mlp == "swiglu",
             "model.mlp: expected gelu or swiglu, got '" + o.mlp + "'");
  check_user(o.norm == "rms" || o.norm == "layer",
             "model.norm: expected rms or layer, got '" + o.norm + "'");
  check_user(o.positions == "rope" || o.positions == "learned",
             "model.positions: expected rope or learned, got '" + o.positions + "'");
  check_user(o.max_positions >= 0,
             "model.max_positions: expected >= 0 (0 = model.max_seq_len), got " +
                 std::to_string(o.max_positions));
  check_user(o.mlp_hidden >= 0, "model.mlp_hidden: expected >= 0 (0 = from model.mlp_ratio), got " +
                                    std::to_string(o.mlp_hidden));
  check_user(o.mask.block_size >= 0,
             "model.block_size: expected >= 0, got " + std::to_string(o.mask.block_size));
  check_user(o.mask.kind != MaskKind::kBlockCausal || o.mask.block_size > 0,
             "model.block_size must be > 0 when model.mask=block_causal");
  const YAML::Node per_layer = cfg::find(config, "model.attention_per_layer");
  if (per_layer.IsDefined() && !per_layer.IsNull())
    o.layer_attention = parse_layer_attention(per_layer, o.n_layers, &o.layer_attention_params);
  return o;
}

std::vector<std::string> parse_layer_attention(const YAML::Node& node, int64_t n_layers,
                                               std::vector<YAML::Node>* params) {
  const std::string key = "config key 'model.attention_per_layer'";
  std::vector<std::string> items;
  std::vector<YAML::Node> item_params;  // per item: its mapping, or null for a name
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      const YAML::Node item = node[i];
      if (item.IsMap()) {
        const YAML::Node name = item["name"];
        check_user(name && name.IsScalar(),
                   key + ": entry " + std::to_string(i) +
                       " is a mapping without name: <attention> (e.g. {name: moh, routed_k: 2})");
        items.push_back(name.Scalar());  // a mapping is one layer (no "*count")
        item_params.push_back(item);
        continue;
      }
      check_user(item.IsScalar(), key + ": expected a list of attention names or mappings");
      items.push_back(item.Scalar());
      item_params.push_back(YAML::Node(YAML::NodeType::Null));
    }
  } else {
    check_user(node.IsScalar(), key + ": expected \"mha*3,moh\" or a list of attention names");
    std::string text = node.Scalar();
    size_t start = 0;
    while (start <= text.size()) {
      const size_t comma = text.find(',', start);
      items.push_back(
          text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      item_params.push_back(YAML::Node(YAML::NodeType::Null));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  std::vector<std::string> layers;
  std::vector<YAML::Node> layer_params;
  for (size_t i = 0; i < items.size(); ++i) {
    std::string item = items[i];
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    int64_t repeat = 1;
    const size_t star = item_params[i].IsMap() ? std::string::npos : item.find('*');
    if (star != std::string::npos) {
      const std::string count = item.substr(star + 1);
      check_user(!count.empty() && count.size() < 6 &&
                     count.find_first_not_of("0123456789") == std::string::npos &&
                     std::stoll(count) > 0,
                 key + ": '" + item + "' needs a positive count after '*' (e.g. mha*3)");
      repeat = std::stoll(count);
      item = item.substr(0, star);
    }
    check_user(
        attention_registry().contains(item),
        key + ": unknown attention '" + item + "'; available: " + [] {
          std::string names;
          for (const auto& name : attention_registry().names())
            names += (names.empty() ? "" : ", ") + name;
          return names;
        }());
    for (int64_t r = 0; r < repeat && static_cast<int64_t>(layers.size()) <= n_layers; ++r) {
      layers.push_back(item);
      layer_params.push_back(item_params[i]);
    }
  }
  check_user(static_cast<int64_t>(layers.size()) == n_layers,
             key + ": names " + std::to_string(layers.size()) +
                 (layers.size() > static_cast<size_t>(n_layers) ? " or more" : "") +
                 " layers, the model has model.n_layers=" + std::to_string(n_layers));
  if (params != nullptr) *params = layer_params;
  return layers;
}

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
  if (swiglu_) return w_down(torch::silu(w_gate(x)) * w_up(x));
  return fc_out(gelu_tanh(fc_in(x)));  // fused kernel; same values as torch::gelu(x, "tanh")
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
  // The layer's `attention:` node. Replaced with Node::reset, never `=`: assigning to a YAML::Node
  // that already refers to a node writes through it, here into the run config's `attention:`
  // group, which every later layer (and config.yaml) would then see.
  YAML::Node params = options.attention_params;
  std::string attention = options.attention;
  if (!options.layer_attention.empty() && options.layer_attention[layer_index] != attention) {
    // Another module in this layer: its built-in defaults (the mask is the model's).
    attention = options.layer_attention[layer_index];
    YAML::Node own;
    own["name"] = attention;
    params.reset(own);
  }
  const YAML::Node layer_params =
      static_cast<size_t>(layer_index) < options.layer_attention_params.size()
          ? options.layer_attention_params[layer_index]
          : YAML::Node(YAML::NodeType::Null);
  if (layer_params.IsMap()) {
    // The layer's own options on top (complete already when the config engine composed them).
    YAML::Node merged = YAML::Clone(params);
    config::merge_into(merged, layer_params);
    params.reset(merged);
  }
  if (options.positions == "learned") {
    // Positions enter once, at the embedding: no rotation inside the attention.
    YAML::Node copy = YAML::Clone(params);
    copy["rope"] = false;
    params.reset(copy);
  }
  attention_options.params.reset(params);
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
