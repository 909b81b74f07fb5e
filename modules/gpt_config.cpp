// The GPT's config reader: binds the `model:` group into ModelOptions, the `attention:` group
// (and, in a hybrid stack, each layer's module and own entry) into the modules' options structs,
// and checks what a single bound cannot. This is the only file of modules/ that reads the config
// tree; the model and the attention modules see typed options only.
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <sstream>

#include "common/config_access.h"
#include "config/options.h"
#include "config/yaml_tree.h"
#include "modules/attention_backend.h"
#include "modules/attention_entry.h"
#include "modules/gpt.h"

namespace attnlab {

namespace {

// A double as a config value would print it (2, -0.5, 1e+38), for error messages.
std::string format_number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

RopeScaling rope_scaling_of(const ModelOptions& m) {
  RopeScaling r;
  r.type = m.rope_scaling();
  r.factor = m.rope_factor();
  r.low_freq_factor = m.rope_low_freq_factor();
  r.high_freq_factor = m.rope_high_freq_factor();
  r.original_max_positions = m.rope_original_max_positions();
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

// Each layer's module options in a hybrid stack (see GptOptions::layer_module_options), and the
// first layer whose own entry differs from the `attention:` group.
void bind_layer_options(GptOptions& o, const YAML::Node& group,
                        const std::vector<YAML::Node>& layer_entries) {
  for (size_t layer = 0; layer < o.layer_attention.size(); ++layer) {
    const std::string& module = o.layer_attention[layer];
    const YAML::Node& entry = layer_entries[layer];
    // The group's options when the layer runs the group's module, else the module's defaults.
    YAML::Node options =
        module == o.attention ? YAML::Clone(group) : YAML::Node(YAML::NodeType::Map);
    std::string prefix = "attention";
    if (entry.IsMap()) {
      config::merge_into(options, entry);
      prefix = "model.attention_per_layer[layer " + std::to_string(layer) + "]";
      for (const auto& field : entry) {
        const YAML::Node group_value = group[field.first.Scalar()];
        if (o.layer_options_differ.empty() &&
            (!group_value || YAML::Dump(group_value) != YAML::Dump(field.second)))
          o.layer_options_differ =
              "layer " + std::to_string(layer) + "'s attention." + field.first.Scalar();
      }
    }
    o.layer_module_options.push_back(bind_attention_options(module, options, prefix));
  }
}

}  // namespace

GptOptions::GptOptions() : GptOptions(ModelOptions{}) {}

GptOptions::GptOptions(const ModelOptions& m)
    : vocab_size(m.vocab_size().value_or(0)),
      d_model(m.d_model()),
      n_layers(m.n_layers()),
      n_heads(m.n_heads()),
      n_kv_heads(m.n_kv_heads()),
      mlp_ratio(m.mlp_ratio()),
      mlp(m.mlp()),
      dropout(m.dropout()),
      max_seq_len(m.max_seq_len()),
      rope_theta(m.rope_theta()),
      rope_scaling(rope_scaling_of(m)),
      norm_eps(m.norm_eps()),
      norm(m.norm()),
      positions(m.positions()),
      max_positions(m.max_positions()),
      tie_embeddings(m.tie_embeddings()),
      mlp_bias(m.mlp_bias()),
      attention_bias(m.attention_bias()),
      qkv_bias(m.attention_bias() || m.qkv_bias()),
      mlp_hidden(m.mlp_hidden()),
      attention_backend(parse_attention_backend(m.attention_backend())) {
  mask.kind = parse_mask_kind(m.mask());
  mask.block_size = m.block_size();
}

template <class ConfigTree>
GptOptions gpt_options_from_config(const ConfigTree& config, int64_t vocab_size) {
  const ModelOptions m = config::bind<ModelOptions>(
      cfg::find(config, "model"), "model", config::BindScope{"model", {"attention_per_layer"}});
  GptOptions o(m);
  // model.vocab_size pads the vocabulary (pretrained models round it up); the tokenizer's ids
  // always fit, so a smaller value (a tokenizer that appends MASK) gives the tokenizer's count.
  check_user(o.vocab_size >= 0, "model.vocab_size: expected a positive count or null, got " +
                                    std::to_string(o.vocab_size));
  o.vocab_size = std::max(vocab_size, o.vocab_size);
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
  const YAML::Node group = cfg::require(config, "attention");
  o.attention = cfg::get<std::string>(config, "attention.name");
  o.attention_module_options = bind_attention_options(o.attention, group);
  const YAML::Node per_layer = cfg::find(config, "model.attention_per_layer");
  if (per_layer.IsDefined() && !per_layer.IsNull()) {
    std::vector<YAML::Node> layer_entries;
    o.layer_attention = parse_layer_attention(per_layer, o.n_layers, &layer_entries);
    bind_layer_options(o, group, layer_entries);
  }
  return o;
}

template <class ConfigTree>
std::vector<std::string> parse_layer_attention(const ConfigTree& node, int64_t n_layers,
                                               std::vector<ConfigTree>* params) {
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

template std::vector<std::string> parse_layer_attention(const YAML::Node&, int64_t,
                                                        std::vector<YAML::Node>*);
template GptOptions gpt_options_from_config(const YAML::Node&, int64_t);

}  // namespace attnlab
