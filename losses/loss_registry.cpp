// The loss-term registry: one line per term. Adding a term = one new file pair under losses/,
// one line here (its accepted keys come from the term's static keys()).
#include "losses/cross_entropy.h"
#include "losses/decorrelation.h"
#include "losses/focal.h"
#include "losses/loss_term.h"
#include "losses/segregation.h"

namespace attnlab {

namespace {
// Terms constructed from (config) or (config, n_layers).
template <typename Term>
LossTermSpec spec() {
  LossTermSpec s;
  s.keys = Term::keys();
  s.make = [](const TermConfig& config, int64_t n_layers) -> std::unique_ptr<LossTerm> {
    if constexpr (std::is_constructible_v<Term, const TermConfig&, int64_t>)
      return std::make_unique<Term>(config, n_layers);
    else
      return std::make_unique<Term>(config);
  };
  return s;
}
}  // namespace

Registry<LossTermSpec>& loss_registry() {
  static Registry<LossTermSpec> registry("loss term", {{"cross_entropy", spec<CrossEntropyTerm>()},
                                                       {"focal", spec<FocalTerm>()},
                                                       {"decorrelation", spec<DecorrelationTerm>()},
                                                       {"segregation", spec<SegregationTerm>()}});
  return registry;
}

}  // namespace attnlab
