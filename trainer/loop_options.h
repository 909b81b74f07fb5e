// The training loop's own options (trainer.* cadence and run settings), parsed once from the
// config into a typed struct, as NonFiniteOptions and GradEarlyStopOptions are for theirs: the
// loop reads fields, never raw keys. Every key is required: the defaults live in
// configs/trainer/default.yaml and configs/optim/*.yaml only, and a composed config has them all.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>

namespace attnlab {

struct LoopOptions {
  int64_t max_steps = 0;         // trainer.max_steps: optimizer steps of the whole run
  int64_t grad_accum_steps = 0;  // trainer.grad_accum_steps: micro-batches per step
  int64_t eval_every = 0;        // trainer.eval_every: 0 = only at the end
  int64_t checkpoint_every = 0;  // trainer.checkpoint_every: 0 = only at the end
  int64_t log_every = 0;         // trainer.log_every: metrics.jsonl cadence
  int64_t keep_last = 0;         // trainer.keep_last: step checkpoints kept
  int64_t halt_at_step = 0;      // trainer.halt_at_step: stop as if interrupted; -1 = never
  bool autocast_bf16 = false;    // trainer.autocast_bf16
  bool tensorboard = false;      // trainer.tensorboard: event files beside metrics.jsonl
  double lr = 0.0;               // optim.lr: the peak learning rate the schedule scales

  // UserError naming the key and what was expected on a bad value.
  static LoopOptions from_config(const YAML::Node& config);
};

}  // namespace attnlab
