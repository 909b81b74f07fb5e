// See autoregressive.h.
#include "tasks/lm/objectives/autoregressive.h"

#include "losses/loss_set.h"

namespace attnlab {

LossResult AutoregressiveObjective::compute(GptImpl& model, const Batch& batch,
                                            const LossSet& losses, ObjectiveContext& /*context*/,
                                            bool /*training*/) {
  ForwardOptions options;
  options.taps = losses.taps();
  if (batch.key_padding.defined()) {
    MaskSpec mask = model.options().mask;
    mask.key_padding = batch.key_padding;
    options.mask = mask;
  }
  return losses.compute(model.forward(batch.input, options), batch);
}

}  // namespace attnlab
