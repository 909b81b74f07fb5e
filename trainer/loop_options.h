// The training loop's own options (the cadence keys of the `trainer` group), as typed options
// (config/options.h): TORCH_ARG fields hold each default once and `visit` lists them with their
// meaning and checks. They are bound with the rest of the group by TrainerOptions
// (trainer/trainer_options.h); the loop reads fields, never raw keys.
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <string>

#include "config/option_schema.h"

namespace attnlab {

struct LoopOptions {
  TORCH_ARG(int64_t, max_steps) = 1200;
  TORCH_ARG(int64_t, grad_accum_steps) = 1;
  TORCH_ARG(int64_t, eval_every) = 250;
  TORCH_ARG(int64_t, eval_batches) = 20;
  TORCH_ARG(int64_t, log_every) = 10;
  TORCH_ARG(int64_t, checkpoint_every) = 500;
  TORCH_ARG(int64_t, keep_last) = 2;
  TORCH_ARG(bool, autocast_bf16) = false;
  TORCH_ARG(std::string, progress) = "auto";
  TORCH_ARG(bool, tensorboard) = true;
  TORCH_ARG(int64_t, halt_at_step) = -1;

 public:
  template <class V>
  void visit(V& v) {
    v("max_steps", max_steps(), "optimizer steps of the whole run", config::at_least(0));
    v("grad_accum_steps", grad_accum_steps(), "micro-batches per optimizer step",
      config::at_least(1));
    v("eval_every", eval_every(), "validation every N steps (0: only at the end)",
      config::at_least(0));
    v("eval_batches", eval_batches(), "validation batches of an lm run", config::at_least(1));
    v("log_every", log_every(), "metrics.jsonl and progress cadence in steps (0: every step)",
      config::at_least(0));
    v("checkpoint_every", checkpoint_every(),
      "checkpoint every N steps (0: only at the end); every improving evaluation also saves",
      config::at_least(0));
    v("keep_last", keep_last(), "step checkpoints kept (0: every one)", config::at_least(0));
    v("autocast_bf16", autocast_bf16(), "bf16 autocast of the forward and backward pass");
    v("progress", progress(), "progress display", config::one_of({"auto", "bar", "plain", "none"}));
    v("tensorboard", tensorboard(), "TensorBoard event files in <run dir>/tensorboard/");
    v("halt_at_step", halt_at_step(),
      "stop with a checkpoint after this step, as if interrupted "
      "(-1: never)",
      config::at_least(-1));
  }

  // log_every with 0 read as every step.
  int64_t log_cadence() const { return log_every_ > 0 ? log_every_ : 1; }
};

}  // namespace attnlab
