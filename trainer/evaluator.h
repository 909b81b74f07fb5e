// Validation: the objective's loss over fixed evaluation batches, split across ranks and
// all-reduced, reported as loss (nats/token), perplexity and bits per byte. Evaluation draws its
// randomness (diffusion masking) from its own fixed-seed generator, so evaluating never changes
// the training RNG stream — a run with eval_every=N replays identically to one without.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "distributed/distributed.h"
#include "losses/loss_set.h"
#include "modules/gpt.h"
#include "trainer/objective.h"

namespace attnlab {

struct EvalResult {
  double loss = 0.0;
  double perplexity = 0.0;
  double bits_per_byte = 0.0;
  int64_t batches = 0;
};

// The per-token NLL a LossResult carries: terms["nll"] when the objective reports one (diffusion
// bound), else the unweighted cross-entropy term, else the total.
double nll_of(const LossResult& result);

class ProgressMeter;

// `progress` (optional) advances by one per batch this rank evaluates.
EvalResult evaluate(GptImpl& model, ObjectiveImpl& objective, const LossSet& losses,
                    const ObjectiveContext& context, const std::vector<Batch>& batches,
                    DistributedContext& dist, const torch::Device& device, double bytes_per_token,
                    ProgressMeter* progress = nullptr);

}  // namespace attnlab
