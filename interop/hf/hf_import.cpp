// Hugging Face import: config.json -> attnlab settings, tensor names -> attnlab names (views of
// the mapped safetensors); see hf_model.h. No model code: the fuzz target links it.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "common/error.h"
#include "interop/hf/hf_model.h"
#include "io/safetensors.h"

namespace attnlab {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string number_text(double value) {
  std::ostringstream out;
  out.precision(17);
  out << value;
  return out.str();
}

// Typed reads of config.json keys, each failure naming the file and key.
struct ConfigReader {
  const json& root;
  std::string file;

  bool has(const std::string& key) const { return root.contains(key) && !root[key].is_null(); }
  [[noreturn]] void fail(const std::string& key, const std::string& expected) const {
    throw UserError("'" + file + "': key '" + key + "': expected " + expected);
  }
  int64_t integer(const std::string& key) const {
    if (!has(key) || !root[key].is_number_integer()) fail(key, "an integer");
    return root[key].get<int64_t>();
  }
  int64_t integer_or(const std::string& key, int64_t fallback) const {
    return has(key) ? integer(key) : fallback;
  }
  double number_or(const std::string& key, double fallback) const {
    if (!has(key)) return fallback;
    if (!root[key].is_number()) fail(key, "a number");
    return root[key].get<double>();
  }
  bool boolean_or(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!root[key].is_boolean()) fail(key, "true or false");
    return root[key].get<bool>();
  }
  std::string text_or(const std::string& key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    if (!root[key].is_string()) fail(key, "a string");
    return root[key].get<std::string>();
  }
};

bool is_llama_like(const std::string& type) {
  return type == "llama" || type == "mistral" || type == "qwen2";
}

// RoPE base and scaling, from transformers 5's rope_parameters or 4's rope_theta/rope_scaling, as
// model.* settings. linear and llama3 scaling are reproduced; other types are refused.
void read_rope(const ConfigReader& c, std::vector<std::pair<std::string, std::string>>& settings) {
  double theta = c.number_or("rope_theta", 10000.0);
  json scaling = nullptr;
  std::string key = "rope_scaling";
  if (c.has("rope_parameters")) {
    const json& rope = c.root["rope_parameters"];
    if (!rope.is_object()) c.fail("rope_parameters", "an object");
    if (rope.contains("rope_theta") && rope["rope_theta"].is_number())
      theta = rope["rope_theta"].get<double>();
    scaling = rope;
    key = "rope_parameters";
  } else if (c.has("rope_scaling")) {
    scaling = c.root["rope_scaling"];
    if (!scaling.is_object()) c.fail("rope_scaling", "an object or null");
  }
  std::string type = "default";
  if (scaling.is_object())
    for (const char* name : {"rope_type", "type"})
      if (scaling.contains(name) && scaling[name].is_string()) {
        type = scaling[name].get<std::string>();
        break;
      }
  settings.emplace_back("model.rope_theta", number_text(theta));
  if (type == "default") {
    settings.emplace_back("model.rope_scaling", "none");
    return;
  }
  if (type != "linear" && type != "llama3")
    c.fail(key + ".rope_type",
           "default, linear or llama3 (attnlab does not implement '" + type + "' RoPE scaling)");
  auto number = [&](const char* name, bool required, double fallback) {
    if (scaling.contains(name) && scaling[name].is_number()) return scaling[name].get<double>();
    if (required) c.fail(key + "." + name, "a number (rope_type " + type + ")");
    return fallback;
  };
  settings.emplace_back("model.rope_scaling", type);
  settings.emplace_back("model.rope_factor", number_text(number("factor", true, 1.0)));
  if (type == "llama3") {
    settings.emplace_back("model.rope_low_freq_factor",
                          number_text(number("low_freq_factor", true, 1.0)));
    settings.emplace_back("model.rope_high_freq_factor",
                          number_text(number("high_freq_factor", true, 4.0)));
    settings.emplace_back("model.rope_original_max_positions",
                          number_text(number("original_max_position_embeddings", true, 8192)));
  }
}

}  // namespace

std::string hf_source_folder(const std::string& init_from) {
  return init_from.rfind("hf:", 0) == 0 ? init_from.substr(3) : "";
}

HfArchitecture read_hf_architecture(const std::string& folder) {
  check_user(!folder.empty(), "init_from=hf:<folder>: the folder is missing after 'hf:'");
  const fs::path config_path = fs::path(folder) / "config.json";
  std::error_code error;
  check_user(fs::is_directory(folder, error), "Hugging Face folder '" + folder +
                                                  "' does not exist (expected a folder with " +
                                                  "config.json and *.safetensors)");
  check_user(fs::is_regular_file(config_path, error),
             "'" + folder + "' has no config.json (expected a Hugging Face model folder)");
  json root;
  try {
    std::ifstream in(config_path);
    root = json::parse(in);
  } catch (const json::exception& e) {
    throw UserError("'" + config_path.string() + "': malformed JSON (" + e.what() + ")");
  }
  check_user(root.is_object(), "'" + config_path.string() + "': expected a JSON object");
  const ConfigReader c{root, config_path.string()};
  HfArchitecture a;
  a.folder = folder;
  a.model_type = c.text_or("model_type", "");
  auto set = [&a](const std::string& key, const std::string& value) {
    a.settings.emplace_back(key, value);
  };
  auto set_int = [&](const std::string& key, int64_t value) { set(key, std::to_string(value)); };
  auto set_bool = [&](const std::string& key, bool value) { set(key, value ? "true" : "false"); };
  if (is_llama_like(a.model_type)) {
    const int64_t d = c.integer("hidden_size");
    const int64_t heads = c.integer("num_attention_heads");
    check_user(d > 0 && heads > 0 && d % heads == 0,
               "'" + c.file + "': hidden_size must be a positive multiple of num_attention_heads");
    if (c.has("head_dim") && c.integer("head_dim") != d / heads)
      c.fail("head_dim", "hidden_size / num_attention_heads = " + std::to_string(d / heads) +
                             " (attnlab derives the head size; got " +
                             std::to_string(c.integer("head_dim")) + ")");
    const std::string act = c.text_or("hidden_act", "silu");
    if (act != "silu") c.fail("hidden_act", "silu (SwiGLU), got '" + act + "'");
    if (a.model_type == "qwen2" && c.boolean_or("use_sliding_window", false))
      c.fail("use_sliding_window", "false (sliding-window attention is not implemented)");
    a.vocab_size = c.integer("vocab_size");
    set_int("model.d_model", d);
    set_int("model.n_layers", c.integer("num_hidden_layers"));
    set_int("model.n_heads", heads);
    set_int("model.n_kv_heads", c.integer_or("num_key_value_heads", heads));
    set("model.mlp", "swiglu");
    set_int("model.mlp_hidden", c.integer("intermediate_size"));
    set("model.norm", "rms");
    set("model.norm_eps", number_text(c.number_or("rms_norm_eps", 1e-6)));
    set("model.positions", "rope");
    read_rope(c, a.settings);
    set_bool("model.tie_embeddings", c.boolean_or("tie_word_embeddings", false));
    set_bool("model.attention_bias", c.boolean_or("attention_bias", false));
    set_bool("model.qkv_bias", a.model_type == "qwen2");
    set_bool("model.mlp_bias", c.boolean_or("mlp_bias", false));
  } else if (a.model_type == "gpt2") {
    const int64_t d = c.integer("n_embd");
    const int64_t heads = c.integer("n_head");
    check_user(d > 0 && heads > 0 && d % heads == 0,
               "'" + c.file + "': n_embd must be a positive multiple of n_head");
    const std::string act = c.text_or("activation_function", "gelu_new");
    if (act != "gelu_new" && act != "gelu_pytorch_tanh")
      c.fail("activation_function", "gelu_new (GELU, tanh approximation), got '" + act + "'");
    if (c.boolean_or("scale_attn_by_inverse_layer_idx", false))
      c.fail("scale_attn_by_inverse_layer_idx", "false");
    if (c.boolean_or("reorder_and_upcast_attn", false)) c.fail("reorder_and_upcast_attn", "false");
    if (!c.boolean_or("scale_attn_weights", true)) c.fail("scale_attn_weights", "true");
    a.vocab_size = c.integer("vocab_size");
    set_int("model.d_model", d);
    set_int("model.n_layers", c.integer("n_layer"));
    set_int("model.n_heads", heads);
    set_int("model.n_kv_heads", 0);
    set("model.mlp", "gelu");
    set_int("model.mlp_hidden", c.integer_or("n_inner", 4 * d));
    set("model.norm", "layer");
    set("model.norm_eps", number_text(c.number_or("layer_norm_epsilon", 1e-5)));
    set("model.positions", "learned");
    set_int("model.max_positions", c.integer_or("n_positions", 1024));
    set_bool("model.tie_embeddings", c.boolean_or("tie_word_embeddings", true));
    set_bool("model.attention_bias", true);
    set_bool("model.qkv_bias", true);
    set_bool("model.mlp_bias", true);
  } else {
    throw UserError("'" + c.file + "': model_type '" + a.model_type +
                    "' is not supported; expected llama, mistral, qwen2 or gpt2");
  }
  check_user(a.vocab_size > 0, "'" + c.file + "': vocab_size must be positive");
  set_int("model.vocab_size", a.vocab_size);
  if (fs::is_regular_file(fs::path(folder) / "tokenizer.json", error)) {
    set("tokenizer", "hf");
    set("tokenizer.path", folder);
  } else if (c.has("attnlab_tokenizer")) {
    // Written by attnlab's export for its built-in tokenizers, which have no tokenizer.json.
    const std::string name = c.text_or("attnlab_tokenizer", "");
    if (name != "byte" && name != "gpt2") c.fail("attnlab_tokenizer", "byte or gpt2");
    set("tokenizer", name);
  }
  return a;
}

HfWeights read_hf_weights(const HfArchitecture& architecture) {
  SafetensorsSet files(architecture.folder);
  HfWeights out;
  const bool gpt2 = architecture.model_type == "gpt2";
  bool tied = false;
  for (const auto& [key, value] : architecture.settings)
    if (key == "model.tie_embeddings") tied = value == "true";
  static const std::regex layer_re(R"(^(?:model\.layers|(?:transformer\.)?h)\.(\d+)\.(.+)$)");
  static const std::map<std::string, std::string> llama_layer = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"post_attention_layernorm.weight", "mlp_norm.weight"},
      {"self_attn.q_proj.weight", "attn.q_proj.weight"},
      {"self_attn.k_proj.weight", "attn.k_proj.weight"},
      {"self_attn.v_proj.weight", "attn.v_proj.weight"},
      {"self_attn.o_proj.weight", "attn.out_proj.weight"},
      {"self_attn.q_proj.bias", "attn.q_proj.bias"},
      {"self_attn.k_proj.bias", "attn.k_proj.bias"},
      {"self_attn.v_proj.bias", "attn.v_proj.bias"},
      {"self_attn.o_proj.bias", "attn.out_proj.bias"},
      {"mlp.gate_proj.weight", "mlp.w_gate.weight"},
      {"mlp.up_proj.weight", "mlp.w_up.weight"},
      {"mlp.down_proj.weight", "mlp.w_down.weight"},
      {"mlp.gate_proj.bias", "mlp.w_gate.bias"},
      {"mlp.up_proj.bias", "mlp.w_up.bias"},
      {"mlp.down_proj.bias", "mlp.w_down.bias"}};
  // GPT-2's Conv1D stores [in, out]: transposed views give nn.Linear's [out, in].
  static const std::map<std::string, std::pair<std::string, bool>> gpt2_layer = {
      {"ln_1.weight", {"attn_norm.weight", false}},
      {"ln_1.bias", {"attn_norm.bias", false}},
      {"ln_2.weight", {"mlp_norm.weight", false}},
      {"ln_2.bias", {"mlp_norm.bias", false}},
      {"attn.c_proj.weight", {"attn.out_proj.weight", true}},
      {"attn.c_proj.bias", {"attn.out_proj.bias", false}},
      {"mlp.c_fc.weight", {"mlp.fc_in.weight", true}},
      {"mlp.c_fc.bias", {"mlp.fc_in.bias", false}},
      {"mlp.c_proj.weight", {"mlp.fc_out.weight", true}},
      {"mlp.c_proj.bias", {"mlp.fc_out.bias", false}}};
  for (const std::string& name : files.names()) {
    torch::Tensor t = files.tensor(name);
    std::smatch m;
    const bool in_layer = std::regex_match(name, m, layer_re);
    const std::string rest = in_layer ? m[2].str() : "";
    const std::string block = in_layer ? "blocks." + m[1].str() + "." : "";
    if (!gpt2) {
      if (name == "model.embed_tokens.weight") {
        out.tensors["embed.weight"] = t;
      } else if (name == "model.norm.weight") {
        out.tensors["final_norm.weight"] = t;
      } else if (name == "lm_head.weight") {
        if (!tied) out.tensors["lm_head.weight"] = t;  // a tied model's copy is the embedding
      } else if (in_layer && rest.find("rotary_emb.inv_freq") != std::string::npos) {
        // a buffer older checkpoints carry; recomputed from rope_theta
      } else if (in_layer && llama_layer.count(rest)) {
        out.tensors[block + llama_layer.at(rest)] = t;
      } else {
        out.unmapped.push_back(name);
      }
      continue;
    }
    std::string bare = name.rfind("transformer.", 0) == 0 ? name.substr(12) : name;
    if (bare == "wte.weight") {
      out.tensors["embed.weight"] = t;
    } else if (bare == "wpe.weight") {
      out.tensors["pos_embed.weight"] = t;
    } else if (bare == "ln_f.weight" || bare == "ln_f.bias") {
      out.tensors["final_norm." + bare.substr(5)] = t;
    } else if (name == "lm_head.weight") {
      if (!tied) out.tensors["lm_head.weight"] = t;
    } else if (in_layer && (rest == "attn.bias" || rest == "attn.masked_bias")) {
      // the causal-mask buffers of older GPT-2 checkpoints
    } else if (in_layer && (rest == "attn.c_attn.weight" || rest == "attn.c_attn.bias")) {
      const bool weight = rest == "attn.c_attn.weight";
      const int64_t fused = t.size(-1);
      check_user(t.dim() == (weight ? 2 : 1) && fused % 3 == 0,
                 "'" + files.file_of(name) + "': tensor '" + name + "' has shape " +
                     c10::str(t.sizes()) + "; expected [d, 3d] (q|k|v)");
      const char* parts[] = {"q_proj", "k_proj", "v_proj"};
      for (int64_t p = 0; p < 3; ++p) {
        torch::Tensor part = t.narrow(-1, p * fused / 3, fused / 3);
        out.tensors[block + "attn." + parts[p] + (weight ? ".weight" : ".bias")] =
            weight ? part.t() : part;
      }
    } else if (in_layer && gpt2_layer.count(rest)) {
      const auto& [target, transpose] = gpt2_layer.at(rest);
      check_user(!transpose || t.dim() == 2, "'" + files.file_of(name) + "': tensor '" + name +
                                                 "' must be a matrix, has shape " +
                                                 c10::str(t.sizes()));
      out.tensors[block + target] = transpose ? t.t() : t;
    } else {
      out.unmapped.push_back(name);
    }
  }
  return out;
}

std::map<std::string, std::vector<int64_t>> expected_attnlab_shapes(
    const HfArchitecture& architecture) {
  std::map<std::string, std::string> v(architecture.settings.begin(), architecture.settings.end());
  auto integer = [&](const std::string& key, int64_t fallback) {
    return v.count(key) ? std::stoll(v.at(key)) : fallback;
  };
  auto flag = [&](const std::string& key) { return v.count(key) && v.at(key) == "true"; };
  const int64_t d = integer("model.d_model", 0), layers = integer("model.n_layers", 0);
  const int64_t heads = integer("model.n_heads", 1);
  const int64_t kv = integer("model.n_kv_heads", 0) > 0 ? integer("model.n_kv_heads", 0) : heads;
  const int64_t hd = d / heads, hidden = integer("model.mlp_hidden", 4 * d);
  const int64_t vocab = architecture.vocab_size;
  const bool layer_norm = v["model.norm"] == "layer", swiglu = v["model.mlp"] == "swiglu";
  const bool all_bias = flag("model.attention_bias"), qkv_bias = all_bias || flag("model.qkv_bias");
  const bool mlp_bias = flag("model.mlp_bias");
  std::map<std::string, std::vector<int64_t>> shapes;
  auto norm = [&](const std::string& name) {
    shapes[name + ".weight"] = {d};
    if (layer_norm) shapes[name + ".bias"] = {d};
  };
  auto linear = [&](const std::string& name, int64_t out, int64_t in, bool bias) {
    shapes[name + ".weight"] = {out, in};
    if (bias) shapes[name + ".bias"] = {out};
  };
  shapes["embed.weight"] = {vocab, d};
  if (v["model.positions"] == "learned")
    shapes["pos_embed.weight"] = {integer("model.max_positions", 0), d};
  for (int64_t i = 0; i < layers; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    norm(b + "attn_norm");
    norm(b + "mlp_norm");
    linear(b + "attn.q_proj", heads * hd, d, qkv_bias);
    linear(b + "attn.k_proj", kv * hd, d, qkv_bias);
    linear(b + "attn.v_proj", kv * hd, d, qkv_bias);
    linear(b + "attn.out_proj", d, heads * hd, all_bias);
    if (swiglu) {
      linear(b + "mlp.w_gate", hidden, d, mlp_bias);
      linear(b + "mlp.w_up", hidden, d, mlp_bias);
      linear(b + "mlp.w_down", d, hidden, mlp_bias);
    } else {
      linear(b + "mlp.fc_in", hidden, d, mlp_bias);
      linear(b + "mlp.fc_out", d, hidden, mlp_bias);
    }
  }
  norm("final_norm");
  if (!flag("model.tie_embeddings")) shapes["lm_head.weight"] = {vocab, d};
  return shapes;
}

std::vector<std::string> hf_tokenizer_files(const std::string& folder) {
  std::vector<std::string> files;
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
    std::error_code error;
    if (fs::is_regular_file(fs::path(folder) / name, error))
      files.push_back((fs::path(folder) / name).string());
  }
  return files;
}

}  // namespace attnlab
