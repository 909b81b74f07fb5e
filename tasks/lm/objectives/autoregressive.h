// `objective=autoregressive`: next-token prediction. The sampler already yields target = input
// shifted by one, so this objective is a forward pass with the loss terms' taps and the LossSet.
#pragma once

#include "trainer/objective.h"

namespace attnlab {

// objective=autoregressive has no options of its own.
struct AutoregressiveObjectiveOptions {
  template <class V>
  void visit(V& /*v*/) {}
};

class AutoregressiveObjective : public ObjectiveImpl {
 public:
  explicit AutoregressiveObjective(const AutoregressiveObjectiveOptions& /*options*/) {}
  LossResult compute(GptImpl& model, const Batch& batch, const LossSet& losses,
                     ObjectiveContext& context, bool training) override;
};

}  // namespace attnlab
