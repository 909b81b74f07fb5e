// GptOptions for tests that build a small model by hand, without composing a config: one place
// for the fields every such test sets. The attention's `params` default to the module's name
// with RoPE and no biases, as the shipped configs/attention/mha.yaml has them.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "modules/attention_entry.h"
#include "modules/gpt.h"

namespace attnlab::testing {

inline GptOptions tiny_gpt_options(int64_t vocab_size, int64_t d_model, int64_t n_layers,
                                   int64_t n_heads, int64_t max_seq_len,
                                   const std::string& attention = "mha",
                                   const std::string& params = "") {
  GptOptions o;
  o.vocab_size = vocab_size;
  o.d_model = d_model;
  o.n_layers = n_layers;
  o.n_heads = n_heads;
  o.max_seq_len = max_seq_len;
  o.attention = attention;
  o.attention_module_options = bind_attention_options(
      attention,
      YAML::Load(params.empty() ? "{name: " + attention + ", rope: true, bias: false}" : params));
  return o;
}

}  // namespace attnlab::testing
