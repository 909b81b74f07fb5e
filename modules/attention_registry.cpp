// The attention registry: one line per module. Adding an attention = one new file under
// modules/attention/, one line here, one configs/attention/<name>.yaml.
#include "modules/attention.h"
#include "modules/attention/diff.h"
#include "modules/attention/gda.h"
#include "modules/attention/mha.h"
#include "modules/attention/moh.h"
#include "modules/attention/softplus_attention.h"
#include "modules/weight_conversion.h"

namespace attnlab {

namespace {
template <typename Impl>
AttentionFactory factory() {
  return [](const AttentionOptions& options) { return std::make_shared<Impl>(options); };
}
}  // namespace

Registry<AttentionFactory>& attention_registry() {
  static Registry<AttentionFactory> registry("attention",
                                             {{"mha", factory<MhaAttentionImpl>()},
                                              {"moh", factory<MohAttentionImpl>()},
                                              {"diff", factory<DiffAttentionImpl>()},
                                              {"gda", factory<GdaAttentionImpl>()},
                                              {"lssa", factory<LssaAttentionImpl>()},
                                              {"lssar", factory<LssarAttentionImpl>()}});
  return registry;
}

Registry<WeightConversion>& weight_conversion_registry() {
  static Registry<WeightConversion> registry("weight conversion",
                                             {{"mha->moh", mha_to_moh_conversion()}});
  return registry;
}

StateDict convert_attention_weights(StateDict source, const StateDict& target_state,
                                    const GptOptions& options, std::vector<std::string>* applied) {
  std::vector<std::string> modules = {options.attention};
  modules.insert(modules.end(), options.layer_attention.begin(), options.layer_attention.end());
  for (const std::string& name : weight_conversion_registry().names()) {
    const WeightConversion& conversion = weight_conversion_registry().get(name);
    if (std::find(modules.begin(), modules.end(), conversion.target) == modules.end()) continue;
    if (!conversion.accepts(source)) continue;
    source = conversion.convert(source, target_state, options);
    if (applied != nullptr) applied->push_back(name);
  }
  return source;
}

std::shared_ptr<AttentionImpl> make_attention(const std::string& name,
                                              const AttentionOptions& options) {
  return attention_registry().get(name)(options);
}

}  // namespace attnlab
