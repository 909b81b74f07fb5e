// Learning-rate schedules chosen by `scheduler.name` (torch's C++ API ships none of these). Each is
// a pure function of the step, lr_factor(step) in [0, 1], multiplied into `optim.lr` (and each
// param group's multiplier) before every optimizer step — so resuming only needs the step, and the
// checkpoint records describe() for provenance.
//
// Conventions (step = index of the optimizer update about to run, 0-based):
//   warmup: factor = (step + 1) / warmup_steps for step < warmup_steps (llm.c convention: the ramp
//           starts just above 0 so the very first update is not wasted; reaches 1 at
//           warmup_steps-1).
//   after max_steps every decaying schedule holds min_lr_ratio.
// Schedules:
//   warmup_cosine (default): warmup, then cosine from 1 to min_lr_ratio over [warmup, max_steps].
//   constant:                warmup (optional, default 0), then 1.
//   linear:                  warmup, then linear from 1 to min_lr_ratio over [warmup, max_steps].
//   wsd:                     warmup-stable-decay: 1 until the last decay_fraction·max_steps steps,
//                            then decay_shape (linear | cosine) down to min_lr_ratio at max_steps.
// Config: scheduler.{name, warmup_steps, min_lr_ratio, decay_fraction, decay_shape, max_steps};
// max_steps falls back to trainer.max_steps.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/registry.h"

namespace attnlab {

struct ScheduleSpec {
  std::string name = "warmup_cosine";
  int64_t warmup_steps = 0;
  int64_t max_steps = 0;
  double min_lr_ratio = 0.1;
  double decay_fraction = 0.2;         // wsd only
  std::string decay_shape = "linear";  // wsd only: linear | cosine

  // Reads scheduler.* (and trainer.max_steps) and validates ranges; UserError names the key.
  static ScheduleSpec from_config(const YAML::Node& config);
};

class LrSchedule {
 public:
  explicit LrSchedule(ScheduleSpec spec) : spec_(std::move(spec)) {}
  virtual ~LrSchedule() = default;
  // Multiplier of the base learning rate at `step`.
  virtual double lr_factor(int64_t step) const = 0;
  const ScheduleSpec& spec() const { return spec_; }
  // "name warmup_steps=.. max_steps=.. ..." for logs and checkpoint metadata.
  std::string describe() const;

 protected:
  // Shared warmup ramp; returns true and sets `factor` while step < warmup_steps.
  bool in_warmup(int64_t step, double& factor) const;
  ScheduleSpec spec_;
};

using ScheduleFactory = std::function<std::unique_ptr<LrSchedule>(const ScheduleSpec&)>;
Registry<ScheduleFactory>& schedule_registry();

// Looks up spec.name in the registry (UserError listing the available names).
std::unique_ptr<LrSchedule> make_schedule(const ScheduleSpec& spec);
std::unique_ptr<LrSchedule> make_schedule(const YAML::Node& config);

}  // namespace attnlab
