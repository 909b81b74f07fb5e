// How an attention module enters the registry, and how its options are bound from the config.
// This is the parse layer of the attention modules: it includes the config engine
// (config/options.h, yaml-cpp), so only the registry table (modules/attention_registry.cpp), the
// GPT's config reader (modules/gpt_config.cpp) and tests include it; the modules themselves see
// their typed options struct only.
//
//   attention_entry<MohAttentionImpl, MohModuleOptions>()   // factory + MohModuleOptions' schema
//
// An entry's options struct lists the keys of the `attention:` group besides `name` (TORCH_ARG
// fields with their defaults and a visit list, config/options.h); binding is strict (an unknown
// key, a wrong type or a failed check is one line naming `attention.<key>`).
#pragma once

#include <memory>
#include <string>

#include "config/options.h"
#include "modules/attention.h"

namespace attnlab {

// A module without options of its own (besides `name`).
struct NoModuleOptions {
  template <class V>
  void visit(V& /*v*/) {}
};

template <class Impl, class Options>
AttentionSpec attention_entry() {
  AttentionSpec spec;
  spec.make = [](const AttentionOptions& options) { return std::make_shared<Impl>(options); };
  spec.options = config::erase_options<Options>();
  return spec;
}

// `group` (an `attention:` mapping, with or without `name`; undefined or null: none) bound into
// the options of `module`; UserError naming `<prefix>.<key>`.
inline std::any bind_attention_options(const std::string& module, const YAML::Node& group,
                                       const std::string& prefix = "attention") {
  const config::BindScope scope{"attention '" + module + "'", {"name"}};
  return attention_registry().get(module).options.bind(group, prefix, scope);
}

}  // namespace attnlab
