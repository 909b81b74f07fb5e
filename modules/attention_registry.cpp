// The attention registry: one line per module. Adding an attention = one new file under
// modules/attention/, one line here, one configs/attention/<name>.yaml.
#include "modules/attention.h"
#include "modules/attention/mha.h"
#include "modules/attention/moh.h"
#include "modules/attention/diff.h"
#include "modules/attention/gda.h"
#include "modules/attention/softplus_attention.h"

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
    r.add("moh", factory<MohAttentionImpl>());
    r.add("diff", factory<DiffAttentionImpl>());
    r.add("gda", factory<GdaAttentionImpl>());
    r.add("lssa", factory<LssaAttentionImpl>());
    r.add("lssar", factory<LssarAttentionImpl>());
    return r;
  }();
  return registry;
}

std::shared_ptr<AttentionImpl> make_attention(const std::string& name,
                                              const AttentionOptions& options) {
  return attention_registry().get(name)(options);
}

}  // namespace attnlab
