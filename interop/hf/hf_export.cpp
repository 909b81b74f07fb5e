// Hugging Face export: attnlab tensors and settings -> a transformers folder; see hf_model.h.
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/config_access.h"
#include "common/error.h"
#include "data/tokenizers/tokenizer_options.h"
#include "interop/hf/hf_model.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "modules/attention/mha.h"

namespace attnlab {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// YAML scalar/sequence/map -> JSON, for the attnlab settings carried in an exported config.json.
json yaml_to_json(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return nullptr;
  if (node.IsSequence()) {
    json list = json::array();
    for (const auto& item : node) list.push_back(yaml_to_json(item));
    return list;
  }
  if (node.IsMap()) {
    json object = json::object();
    for (const auto& item : node) object[item.first.Scalar()] = yaml_to_json(item.second);
    return object;
  }
  const std::string& text = node.Scalar();
  if (text == "true" || text == "false") return text == "true";
  try {
    size_t used = 0;
    const long long integer = std::stoll(text, &used);
    if (used == text.size()) return integer;
    const double real = std::stod(text, &used);
    if (used == text.size()) return real;
  } catch (const std::exception&) {
  }
  return text;
}

// transformers' rope_parameters (5.x) for the model's RoPE base and scaling.
json rope_parameters(const GptOptions& o) {
  const RopeScaling& r = o.rope_scaling;
  json p = {{"rope_theta", o.rope_theta}, {"rope_type", r.type == "none" ? "default" : r.type}};
  if (r.type != "none") p["factor"] = r.factor;
  if (r.type == "llama3") {
    p["low_freq_factor"] = r.low_freq_factor;
    p["high_freq_factor"] = r.high_freq_factor;
    p["original_max_position_embeddings"] = static_cast<int64_t>(r.original_max_positions);
  }
  return p;
}

std::string dtype_text(torch::ScalarType dtype) {
  if (dtype == torch::kBFloat16) return "bfloat16";
  if (dtype == torch::kFloat16) return "float16";
  if (dtype == torch::kFloat64) return "float64";
  return "float32";
}

}  // namespace

torch::ScalarType parse_weights_dtype(const std::string& text, const std::string& command) {
  if (text == "float32" || text == "fp32") return torch::kFloat32;
  if (text == "bfloat16" || text == "bf16") return torch::kBFloat16;
  if (text == "float16" || text == "fp16") return torch::kFloat16;
  throw UserError("attnlab " + command + ": dtype='" + text +
                  "': expected float32, bfloat16 or float16");
}

HfFamily hf_family(const StateDict& weights, const YAML::Node& config) {
  check_user(weights.count("embed.weight") > 0,
             "export format=hf: the weights have no embed.weight (not an attnlab GPT)");
  const int64_t vocab = weights.at("embed.weight").size(0);
  GptOptions o = gpt_options_from_config(config, vocab);
  const int64_t heads = o.n_heads;
  const int64_t kv_heads = o.n_kv_heads > 0 ? o.n_kv_heads : heads;
  const bool all_mha =
      o.attention == "mha" && std::all_of(o.layer_attention.begin(), o.layer_attention.end(),
                                          [](const std::string& name) { return name == "mha"; });
  const bool causal = o.mask.kind == MaskKind::kCausal;
  const bool rope_in_attention =
      all_mha &&
      module_options<MhaModuleOptions>(attention_options_for_layer(o, 0, nullptr)).rope();
  auto has = [&](const std::string& name) { return weights.count(name) > 0; };
  const bool qkv_bias = has("blocks.0.attn.q_proj.bias");
  const bool out_bias = has("blocks.0.attn.out_proj.bias");
  const bool tied = !has("lm_head.weight");

  HfFamily result;
  std::string why;
  // A layer with options of its own (e.g. {name: mha, rope: false}) is not what the group says:
  // transformers classes have one attention setting for every layer.
  const std::string own_options =
      o.layer_options_differ.empty()
          ? ""
          : o.layer_options_differ + " differs from the attention group's";
  if (!all_mha)
    why = "attention '" + o.attention + "' (or a hybrid stack) has no transformers class";
  else if (!own_options.empty())
    why = own_options;
  else if (!causal)
    why = "the mask is not causal";
  if (why.empty() && o.norm == "rms" && o.positions == "rope" && o.mlp == "swiglu" &&
      rope_in_attention && (!out_bias || qkv_bias)) {
    result.model_type = (qkv_bias && !out_bias) ? "qwen2" : "llama";
  } else if (why.empty() && o.norm == "layer" && o.positions == "learned" && o.mlp == "gelu" &&
             o.mlp_bias && qkv_bias && out_bias && tied && kv_heads == heads) {
    result.model_type = "gpt2";
  } else {
    result.model_type = "attnlab";
    if (why.empty())
      why = "model.norm=" + o.norm + ", model.positions=" + o.positions + ", model.mlp=" + o.mlp +
            " match neither Llama/Qwen2 (rms, rope, swiglu) nor GPT-2 (layer, learned, gelu, "
            "biases, tied)";
    result.reason = why;
  }
  return result;
}

std::string hf_llama_module_name(const std::string& attnlab_module) {
  const std::string prefix = "blocks.";
  if (attnlab_module.rfind(prefix, 0) != 0) return "";
  const size_t dot = attnlab_module.find('.', prefix.size());
  if (dot == std::string::npos) return "";
  const std::string layer = attnlab_module.substr(prefix.size(), dot - prefix.size());
  const std::string rest = attnlab_module.substr(dot + 1);
  static const std::map<std::string, std::string> names = {
      {"attn.q_proj", "self_attn.q_proj"}, {"attn.k_proj", "self_attn.k_proj"},
      {"attn.v_proj", "self_attn.v_proj"}, {"attn.out_proj", "self_attn.o_proj"},
      {"mlp.w_gate", "mlp.gate_proj"},     {"mlp.w_up", "mlp.up_proj"},
      {"mlp.w_down", "mlp.down_proj"}};
  const auto it = names.find(rest);
  return it == names.end() ? "" : "model.layers." + layer + "." + it->second;
}

HfExportResult export_hf_folder(const StateDict& weights, const YAML::Node& config,
                                const std::string& out, const HfExportOptions& options,
                                const std::vector<std::string>& tokenizer_files) {
  const HfFamily family = hf_family(weights, config);
  const int64_t vocab = weights.at("embed.weight").size(0);
  GptOptions o = gpt_options_from_config(config, vocab);
  const int64_t d = o.d_model, heads = o.n_heads;
  const int64_t kv_heads = o.n_kv_heads > 0 ? o.n_kv_heads : heads;
  auto has = [&](const std::string& name) { return weights.count(name) > 0; };
  const bool qkv_bias = has("blocks.0.attn.q_proj.bias");
  const bool out_bias = has("blocks.0.attn.out_proj.bias");
  const bool tied = !has("lm_head.weight");
  const std::string why = family.reason;
  HfExportResult result;
  result.model_type = family.model_type;
  result.reason = family.reason;

  const std::string& type = result.model_type;
  NamedTensorList tensors;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    tensors.emplace_back(name, t);  // converted to options.dtype one at a time while writing
  };
  json cfg_json;
  if (type == "attnlab") {
    for (const auto& [name, t] : weights) add(name, t);
    YAML::Node settings;
    settings["model"] = config["model"];
    settings["attention"] = config["attention"];
    cfg_json = {{"model_type", "attnlab"},
                {"architectures", {"AttnlabGpt"}},
                {"attnlab_note", "no transformers class reproduces this model (" + why +
                                     "); tensors keep attnlab's names; build it with attnlab "
                                     "using attnlab_config"},
                {"attnlab_config", yaml_to_json(settings)},
                {"vocab_size", vocab}};
  } else {
    int64_t mlp_hidden = 0;
    const bool llama = type != "gpt2";
    for (int64_t i = 0; i < o.n_layers; ++i) {
      const std::string a = "blocks." + std::to_string(i) + ".";
      auto w = [&](const std::string& name) -> const torch::Tensor& {
        auto it = weights.find(a + name);
        check_user(it != weights.end(), "export format=hf: tensor '" + a + name + "' is missing");
        return it->second;
      };
      if (llama) {
        const std::string h = "model.layers." + std::to_string(i) + ".";
        add(h + "input_layernorm.weight", w("attn_norm.weight"));
        add(h + "post_attention_layernorm.weight", w("mlp_norm.weight"));
        // The Linear layers by hf_llama_module_name (export format=peft names adapters so).
        for (const std::string p : {"attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.out_proj",
                                    "mlp.w_gate", "mlp.w_up", "mlp.w_down"}) {
          const std::string module = hf_llama_module_name(a + p);
          add(module + ".weight", w(p + ".weight"));
          const bool bias = p == "attn.out_proj"      ? out_bias
                            : p.rfind("mlp.", 0) == 0 ? o.mlp_bias
                                                      : qkv_bias;
          if (bias) add(module + ".bias", w(p + ".bias"));
        }
        mlp_hidden = w("mlp.w_gate.weight").size(0);
      } else {
        const std::string h = "transformer.h." + std::to_string(i) + ".";
        add(h + "ln_1.weight", w("attn_norm.weight"));
        add(h + "ln_1.bias", w("attn_norm.bias"));
        add(h + "ln_2.weight", w("mlp_norm.weight"));
        add(h + "ln_2.bias", w("mlp_norm.bias"));
        add(h + "attn.c_attn.weight",
            torch::cat({w("attn.q_proj.weight").t(), w("attn.k_proj.weight").t(),
                        w("attn.v_proj.weight").t()},
                       1));
        add(h + "attn.c_attn.bias",
            torch::cat({w("attn.q_proj.bias"), w("attn.k_proj.bias"), w("attn.v_proj.bias")}));
        add(h + "attn.c_proj.weight", w("attn.out_proj.weight").t());
        add(h + "attn.c_proj.bias", w("attn.out_proj.bias"));
        add(h + "mlp.c_fc.weight", w("mlp.fc_in.weight").t());
        add(h + "mlp.c_fc.bias", w("mlp.fc_in.bias"));
        add(h + "mlp.c_proj.weight", w("mlp.fc_out.weight").t());
        add(h + "mlp.c_proj.bias", w("mlp.fc_out.bias"));
        mlp_hidden = w("mlp.fc_in.weight").size(0);
      }
    }
    if (llama) {
      add("model.embed_tokens.weight", weights.at("embed.weight"));
      add("model.norm.weight", weights.at("final_norm.weight"));
      if (!tied) add("lm_head.weight", weights.at("lm_head.weight"));
      cfg_json = {{"model_type", type},
                  {"architectures", {type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
                  {"hidden_size", d},
                  {"intermediate_size", mlp_hidden},
                  {"num_hidden_layers", o.n_layers},
                  {"num_attention_heads", heads},
                  {"num_key_value_heads", kv_heads},
                  {"head_dim", d / heads},
                  {"hidden_act", "silu"},
                  {"max_position_embeddings", std::max<int64_t>(o.max_seq_len, 2048)},
                  {"rms_norm_eps", o.norm_eps},
                  {"rope_theta", o.rope_theta},
                  {"rope_parameters", rope_parameters(o)},
                  {"tie_word_embeddings", tied},
                  {"attention_dropout", 0.0},
                  {"vocab_size", vocab}};
      if (type == "llama") {
        cfg_json["attention_bias"] = qkv_bias;
        cfg_json["mlp_bias"] = o.mlp_bias;
      } else {
        cfg_json["use_sliding_window"] = false;
      }
    } else {
      add("transformer.wte.weight", weights.at("embed.weight"));
      add("transformer.wpe.weight", weights.at("pos_embed.weight"));
      add("transformer.ln_f.weight", weights.at("final_norm.weight"));
      add("transformer.ln_f.bias", weights.at("final_norm.bias"));
      cfg_json = {{"model_type", "gpt2"},
                  {"architectures", {"GPT2LMHeadModel"}},
                  {"n_embd", d},
                  {"n_layer", o.n_layers},
                  {"n_head", heads},
                  {"n_inner", mlp_hidden},
                  {"n_positions", weights.at("pos_embed.weight").size(0)},
                  {"activation_function", "gelu_new"},
                  {"layer_norm_epsilon", o.norm_eps},
                  {"attn_pdrop", 0.0},
                  {"embd_pdrop", 0.0},
                  {"resid_pdrop", 0.0},
                  {"tie_word_embeddings", true},
                  {"vocab_size", vocab}};
    }
  }
  cfg_json["dtype"] = dtype_text(options.dtype);
  cfg_json["torch_dtype"] = dtype_text(options.dtype);
  cfg_json["attnlab_exported"] = true;
  // A built-in tokenizer (byte, gpt2) has no tokenizer.json to travel with the folder; its name
  // does, so that importing the folder back trains with the ids the model was trained on.
  if (cfg::has(config, "tokenizer.name")) {
    const TokenizerOptions tokenizer = tokenizer_options(config);
    if (std::holds_alternative<ByteTokenizerOptions>(tokenizer))
      cfg_json["attnlab_tokenizer"] = "byte";
    if (std::holds_alternative<Gpt2TokenizerOptions>(tokenizer))
      cfg_json["attnlab_tokenizer"] = "gpt2";
  }

  const fs::path final_path = fs::absolute(out);
  write_new_folder(out, "export out", [&](const fs::path& folder) {
    {
      std::ofstream config_out(folder / "config.json");
      config_out << cfg_json.dump(2) << "\n";
      check_user(static_cast<bool>(config_out),
                 "cannot write " + (folder / "config.json").string());
    }
    result.files =
        write_safetensors_folder(folder.string(), tensors, options.max_shard_bytes, options.dtype);
    for (const auto& file : tokenizer_files)
      fs::copy_file(file, folder / fs::path(file).filename());
  });
  for (auto& file : result.files) file = (final_path / fs::path(file).filename()).string();
  result.files.insert(result.files.begin(), (final_path / "config.json").string());
  result.tensors = tensors.size();
  return result;
}

}  // namespace attnlab
