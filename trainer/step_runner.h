// One optimizer step of the training loop, in a fixed order so that a resumed run replays it
// exactly: grad_accum_steps micro-batches (the task's next batch and loss, backward; gradients
// all-reduced on the last) -> the divergence guard on the loss terms and gradients -> GradES ->
// clip -> the guard on the grad norm and the spike detector -> the optimizer update -> the guard
// on the parameters and moments. The runner only reports what happened (StepOutcome); what the
// loop then does about a bad step is the divergence guard's policy (divergence_guard.h).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "distributed/distributed.h"
#include "distributed/gradient_reducer.h"
#include "trainer/divergence_guard.h"
#include "trainer/grad_early_stop.h"
#include "trainer/loop_options.h"
#include "trainer/optimizer.h"
#include "trainer/task.h"

namespace attnlab {

struct StepOutcome {
  enum class Kind {
    kApplied,    // the update was applied
    kNonFinite,  // a loss, gradient, grad norm or update was not finite: see `fault`
    kDropped,    // a spike whose batch the detector dropped (trainer.spike_skip)
  };
  Kind kind = Kind::kApplied;
  std::string fault;            // kNonFinite: what was not finite
  bool update_applied = false;  // kNonFinite: the optimizer had already changed the weights
  // The step's losses ("train/loss", "train/loss/<term>", ...), averaged over micro-steps and
  // ranks; the loop adds lr, grad_norm and the speeds before logging them.
  std::map<std::string, double> logged;
  double loss = 0.0;
  double grad_norm = 0.0;
  int64_t tokens = 0;    // trained by this step over all ranks
  int64_t examples = 0;  // rows, likewise
};

class StepRunner {
 public:
  using Say = std::function<void(const std::string&)>;
  // Keeps references: everything outlives the runner.
  StepRunner(Task& task, torch::nn::Module& model, OptimizerSetup& optim, GradientReducer& reducer,
             DistributedContext& dist, torch::Device device, const LoopOptions& loop,
             DivergenceGuard& guard, GradEarlyStop& grades, Say say);

  // Runs step `step` (1-based) with every group's lr at its base * lr_factor (the schedule's) *
  // lr_scale (the divergence guard's) * its multiplier (set_learning_rate).
  StepOutcome run(int64_t step, double lr_factor, double lr_scale);

 private:
  void accumulate_gradients(StepOutcome& outcome);

  Task& task_;
  torch::nn::Module& model_;
  OptimizerSetup& optim_;
  GradientReducer& reducer_;
  DistributedContext& dist_;
  torch::Device device_;
  const LoopOptions& loop_;
  DivergenceGuard& guard_;
  GradEarlyStop& grades_;
  Say say_;
};

}  // namespace attnlab
