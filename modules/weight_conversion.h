// Weight conversions between attention modules, registered by the modules that own them (one
// line each in modules/attention_registry.cpp), so that `init_from` with another module's weights
// needs no special case in the trainer: e.g. an MHA checkpoint loaded into a model whose layers
// (all, or some of a hybrid stack) are MoH is converted by MoH's own converter (q/k/v -> qkv,
// out_proj -> proj). A converter works on whole state dicts and follows the target's tensors, so
// layers that keep the source's module are copied as they are.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>

#include "common/registry.h"
#include "modules/gpt.h"

namespace attnlab {

using StateDict = std::map<std::string, torch::Tensor>;

struct WeightConversion {
  std::string target;  // the attention module whose layers this converter fills (e.g. "moh")
  // True when `source` holds weights this converter reads (e.g. MHA's q_proj layout).
  std::function<bool(const StateDict& source)> accepts;
  std::function<StateDict(const StateDict& source, const StateDict& target_state,
                          const GptOptions& options)>
      convert;
};

// "mha->moh" -> conversion; the table lives in modules/attention_registry.cpp.
Registry<WeightConversion>& weight_conversion_registry();

// Applies every registered conversion whose target module is used by a layer of `options` and
// which accepts `source`; returns `source` unchanged when none applies. `applied` receives the
// names of the conversions used.
StateDict convert_attention_weights(StateDict source, const StateDict& target_state,
                                    const GptOptions& options,
                                    std::vector<std::string>* applied = nullptr);

}  // namespace attnlab
