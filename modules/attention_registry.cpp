// The attention registry: one line per module. Adding an attention = one new file under
// modules/attention/ (the module and its options struct), one line here, one
// configs/attention/<name>.yaml.
#include "modules/attention.h"
#include "modules/attention/diff.h"
#include "modules/attention/gda.h"
#include "modules/attention/mha.h"
#include "modules/attention/moh.h"
#include "modules/attention/softplus_attention.h"
#include "modules/attention_entry.h"
#include "modules/weight_conversion.h"

namespace attnlab {

Registry<AttentionSpec>& attention_registry() {
  static Registry<AttentionSpec> registry(
      "attention", {{"mha", attention_entry<MhaAttentionImpl, MhaModuleOptions>()},
                    {"moh", attention_entry<MohAttentionImpl, MohModuleOptions>()},
                    {"diff", attention_entry<DiffAttentionImpl, DiffModuleOptions>()},
                    {"gda", attention_entry<GdaAttentionImpl, GdaModuleOptions>()},
                    {"lssa", attention_entry<LssaAttentionImpl, LssaModuleOptions>()},
                    {"lssar", attention_entry<LssarAttentionImpl, LssarModuleOptions>()}});
  return registry;
}

Registry<WeightConversion>& weight_conversion_registry() {
  static Registry<WeightConversion> registry("weight conversion",
                                             {{"mha->moh", mha_to_moh_conversion()}});
  return registry;
}

StateDict convert_attention_weights(StateDict source, const StateDict& target_state,
                                    const std::vector<std::string>& modules,
                                    const AttentionShape& shape,
                                    std::vector<std::string>* applied) {
  for (const std::string& name : weight_conversion_registry().names()) {
    const WeightConversion& conversion = weight_conversion_registry().get(name);
    if (std::find(modules.begin(), modules.end(), conversion.target) == modules.end()) continue;
    if (!conversion.accepts(source)) continue;
    source = conversion.convert(source, target_state, shape);
    if (applied != nullptr) applied->push_back(name);
  }
  return source;
}

std::shared_ptr<AttentionImpl> make_attention(const std::string& name,
                                              const AttentionOptions& options) {
  return attention_registry().get(name).make(options);
}

}  // namespace attnlab
