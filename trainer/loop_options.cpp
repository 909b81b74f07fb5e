// LoopOptions::from_config: trainer.* cadence keys and optim.lr, checked once.
#include "trainer/loop_options.h"

#include <cmath>
#include <string>

#include "common/config_access.h"
#include "common/error.h"

namespace attnlab {

namespace {

int64_t integer_at_least(const YAML::Node& config, const std::string& key, int64_t minimum) {
  const int64_t value = cfg::get<int64_t>(config, key);
  check_user(value >= minimum, key + ": expected an integer >= " + std::to_string(minimum) +
                                   ", got " + std::to_string(value));
  return value;
}

}  // namespace

LoopOptions LoopOptions::from_config(const YAML::Node& config) {
  LoopOptions o;
  o.max_steps = integer_at_least(config, "trainer.max_steps", 0);
  o.grad_accum_steps = integer_at_least(config, "trainer.grad_accum_steps", 1);
  o.eval_every = integer_at_least(config, "trainer.eval_every", 0);
  o.checkpoint_every = integer_at_least(config, "trainer.checkpoint_every", 0);
  o.log_every = std::max<int64_t>(1, cfg::get<int64_t>(config, "trainer.log_every"));
  o.keep_last = cfg::get<int64_t>(config, "trainer.keep_last");
  o.halt_at_step = cfg::get<int64_t>(config, "trainer.halt_at_step");
  o.autocast_bf16 = cfg::get<bool>(config, "trainer.autocast_bf16");
  o.tensorboard = cfg::get<bool>(config, "trainer.tensorboard");
  o.lr = cfg::get<double>(config, "optim.lr");
  check_user(std::isfinite(o.lr) && o.lr >= 0,
             "optim.lr: expected a finite number >= 0, got " + std::to_string(o.lr));
  return o;
}

}  // namespace attnlab
