// The attention registry: one line per module. Adding an attention = one new file under
// modules/attention/, one line here, one configs/attention/<name>.yaml.
#include "modules/attention.h"
#include "modules/attention/mha.h"

namespace attnlab {

namespace {
template <typename Impl>
AttentionFactory factory() {
  return [](const AttentionOptions& options) { return std::make_shared<Impl>(options); };
}
}  // namespace

Registry<AttentionFactory>& attention_registry() {
  static Registry<AttentionFactory> registry = [] {
    Registry<AttentionFactory> r("attention");
    r.add("mha", factory<MhaAttentionImpl>());
    return r;
  }();
  return registry;
}

std::shared_ptr<AttentionImpl> make_attention(const std::string& name,
                                              const AttentionOptions& options) {
  return attention_registry().get(name)(options);
}

}  // namespace attnlab
