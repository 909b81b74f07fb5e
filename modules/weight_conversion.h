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
#include <vector>

#include "common/registry.h"
#include "modules/state_dict.h"

namespace attnlab {

// The shape of the layers a conversion fills (the model's attention width and heads): all a
// converter needs to know of the model.
struct AttentionShape {
  int64_t d_model = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;  // 0 = n_heads
};

struct WeightConversion {
  std::string target;  // the attention module whose layers this converter fills (e.g. "moh")
  // True when `source` holds weights this converter reads (e.g. MHA's q_proj layout).
  std::function<bool(const StateDict& source)> accepts;
  std::function<StateDict(const StateDict& source, const StateDict& target_state,
                          const AttentionShape& shape)>
      convert;
};

// "mha->moh" -> conversion; the table lives in modules/attention_registry.cpp.
Registry<WeightConversion>& weight_conversion_registry();

// Applies every registered conversion whose target module is among `layer_modules` (the
// attention module of each layer) and which accepts `source`; returns `source` unchanged when
// none applies. `applied` receives the names of the conversions used.
StateDict convert_attention_weights(StateDict source, const StateDict& target_state,
                                    const std::vector<std::string>& layer_modules,
                                    const AttentionShape& shape,
                                    std::vector<std::string>* applied = nullptr);

}  // namespace attnlab
