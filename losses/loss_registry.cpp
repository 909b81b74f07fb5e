// The loss-term registry: one line per term. Adding a term = one new file pair under losses/ (the
// term and its options struct) and one line here.
#include "losses/cross_entropy.h"
#include "losses/decorrelation.h"
#include "losses/focal.h"
#include "losses/loss_term.h"
#include "losses/loss_term_entry.h"
#include "losses/segregation.h"

namespace attnlab {

Registry<LossTermSpec>& loss_registry() {
  static Registry<LossTermSpec> registry(
      "loss term",
      {{"cross_entropy", loss_term_entry<CrossEntropyTerm, CrossEntropyTermOptions>()},
       {"focal", loss_term_entry<FocalTerm, FocalTermOptions>()},
       {"decorrelation", loss_term_entry<DecorrelationTerm, DecorrelationTermOptions>()},
       {"segregation", loss_term_entry<SegregationTerm, SegregationTermOptions>()}});
  return registry;
}

}  // namespace attnlab
