// `objective=autoregressive`: next-token prediction. The sampler already yields target = input
// shifted by one, so this objective is a forward pass with the loss terms' taps and the LossSet.
#pragma once

#include "trainer/objective.h"

namespace attnlab {

class AutoregressiveObjective : public ObjectiveImpl {
 public:
  explicit AutoregressiveObjective(const YAML::Node& /*config*/) {}
  LossResult compute(GptImpl& model, const Batch& batch, const LossSet& losses,
                     ObjectiveContext& context, bool training) override;
};

}  // namespace attnlab
