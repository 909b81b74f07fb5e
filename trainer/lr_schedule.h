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
//   constant:                warmup, then 1.
//   linear:                  warmup, then linear from 1 to min_lr_ratio over [warmup, max_steps].
//   wsd:                     warmup-stable-decay: 1 until the last decay_fraction·max_steps steps,
//                            then decay_shape (linear | cosine) down to min_lr_ratio at max_steps.
// Options: WarmupOptions (constant), DecayOptions (warmup_cosine, linear: + min_lr_ratio) and
// WsdOptions (+ decay_fraction, decay_shape), each bound strictly from the `scheduler` group
// (config/options.h); configs/scheduler/<name>.yaml holds the same defaults. max_steps: null
// spans trainer.max_steps.
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "common/registry.h"
#include "config/option_schema.h"

namespace attnlab {

// scheduler=constant; the warmup and run length of every schedule.
struct WarmupOptions {
  TORCH_ARG(int64_t, warmup_steps) = 100;
  TORCH_ARG(std::optional<int64_t>, max_steps) = std::nullopt;
  TORCH_ARG(std::string, extend) = "recompute";

 public:
  template <class V>
  void visit(V& v) {
    v("warmup_steps", warmup_steps(),
      "linear warmup steps (longer than the run: warm up over the whole run)", config::at_least(0));
    v("max_steps", max_steps(), "steps the schedule spans; null: trainer.max_steps",
      config::greater_than(0));
    v("extend", extend(),
      "a finished run resumed with a larger trainer.max_steps: recompute (the schedule over the "
      "new length; a decayed rate rises again), hold (keep the rate the run finished with) or "
      "restart (a new cycle of the schedule over the new steps)",
      config::one_of({"recompute", "hold", "restart"}));
  }
};

// scheduler=warmup_cosine | linear: the warmup, then a decay to min_lr_ratio x lr at max_steps.
struct DecayOptions : WarmupOptions {
  TORCH_ARG(double, min_lr_ratio) = 0.1;

 public:
  template <class V>
  void visit(V& v) {
    WarmupOptions::visit(v);
    v("min_lr_ratio", min_lr_ratio(), "the floor: lr factor at and after max_steps",
      config::in_range(0.0, 1.0));
  }
};

// scheduler=wsd: warmup, stable at 1, then decay over the last decay_fraction of max_steps.
struct WsdOptions : DecayOptions {
  TORCH_ARG(double, decay_fraction) = 0.2;
  TORCH_ARG(std::string, decay_shape) = "linear";

 public:
  template <class V>
  void visit(V& v) {
    DecayOptions::visit(v);
    v("decay_fraction", decay_fraction(), "fraction of max_steps the final decay spans",
      config::greater_than(0.0), config::at_most(1.0));
    v("decay_shape", decay_shape(), "shape of the final decay",
      config::one_of({"linear", "cosine"}));
  }
};

// The options of the schedule scheduler.name chose (one alternative per options type).
using ScheduleOptions = std::variant<WarmupOptions, DecayOptions, WsdOptions>;

// The schedule a config asks for: its registry name, its options and the run length it spans.
struct ScheduleChoice {
  std::string name;
  ScheduleOptions options;
  int64_t max_steps = 0;  // scheduler.max_steps, else trainer.max_steps
};

class LrSchedule {
 public:
  // `warmup_steps` longer than `max_steps` is clamped to it (with a warning, once per process).
  LrSchedule(std::string name, int64_t warmup_steps, int64_t max_steps);
  virtual ~LrSchedule() = default;
  // Multiplier of the base learning rate at `step`.
  virtual double lr_factor(int64_t step) const = 0;
  const std::string& name() const { return name_; }
  int64_t warmup_steps() const { return warmup_steps_; }
  int64_t max_steps() const { return max_steps_; }
  // "name warmup_steps=.. max_steps=.. ..." for logs and checkpoint metadata.
  std::string describe() const;

 protected:
  // The schedule's own settings for describe(): " min_lr_ratio=0.1".
  virtual std::string describe_options() const { return ""; }
  // Shared warmup ramp; returns true and sets `factor` while step < warmup_steps.
  bool in_warmup(int64_t step, double& factor) const;

 private:
  std::string name_;
  int64_t warmup_steps_ = 0;
  int64_t max_steps_ = 0;
};

// scheduler.extend on a run that finished at step `finished_at` (its schedule spanned that many
// steps) and resumes with a longer run (choice.max_steps): the factor of each new step.
//   recompute: the schedule over the new length, as if the run had been that long from the start;
//   hold:      the factor the finished schedule ended with (decaying schedules: min_lr_ratio);
//   restart:   the same schedule over the new steps alone, step finished_at being its step 0
//              (a warm restart: warmup, then its decay; wsd: a new warmup-stable-decay phase).
class ScheduleExtension {
 public:
  ScheduleExtension(const ScheduleChoice& choice, int64_t finished_at);
  double lr_factor(int64_t step) const;
  int64_t finished_at() const { return finished_at_; }
  // One line for the terminal: what the learning rate factor does from finished_at on.
  std::string describe() const;

 private:
  std::string policy_;
  int64_t finished_at_;
  std::unique_ptr<LrSchedule> finished_, longer_, restarted_;
};

// The ScheduleExtension of a resumed run: a new one when the run had finished its recorded
// schedule (`recorded_schedule`: the checkpoint's describe(), step >= its max_steps) and `choice`
// spans more steps, else the one an earlier resume recorded (`extra`'s "schedule_extended_from",
// kept by every later checkpoint); the one returned is recorded in `extra`. nullopt otherwise.
std::optional<ScheduleExtension> resume_schedule_extension(
    const ScheduleChoice& choice, int64_t step, const std::string& recorded_schedule,
    std::map<std::string, std::string>& extra);

// A registry entry: the schedule's options (default constructed: the alternative that binding the
// `scheduler` group fills) and its factory.
struct ScheduleSpec {
  ScheduleOptions defaults;
  std::function<std::unique_ptr<LrSchedule>(const ScheduleChoice&)> make;
};
Registry<ScheduleSpec>& schedule_registry();

// Binds scheduler.* into the options of the schedule scheduler.name names (default
// warmup_cosine); UserError naming the key. Defined for YAML::Node.
template <class ConfigTree>
ScheduleOptions schedule_options(const ConfigTree& config);
// The name, schedule_options(config) and the run length (scheduler.max_steps, else
// trainer.max_steps). Defined for YAML::Node.
template <class ConfigTree>
ScheduleChoice schedule_choice(const ConfigTree& config);

// Looks up choice.name in the registry (UserError listing the available names) and builds it.
std::unique_ptr<LrSchedule> make_schedule(const ScheduleChoice& choice);
// schedule_choice(config), then the above. Defined for YAML::Node.
template <class ConfigTree>
std::unique_ptr<LrSchedule> make_schedule(const ConfigTree& config);

}  // namespace attnlab
