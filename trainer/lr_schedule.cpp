// The four schedules of lr_schedule.h and their registry table (one line per schedule).
#include "trainer/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <sstream>

#include "common/config_access.h"
#include "common/error.h"

namespace attnlab {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Fraction of the way from `begin` to `end` (clamped to [0, 1]).
double progress(int64_t step, int64_t begin, int64_t end) {
  if (end <= begin) return 1.0;
  double p = static_cast<double>(step - begin) / static_cast<double>(end - begin);
  return std::clamp(p, 0.0, 1.0);
}

double cosine_between(double p, double floor) {
  return floor + (1.0 - floor) * 0.5 * (1.0 + std::cos(kPi * p));
}

class WarmupCosine : public LrSchedule {
 public:
  using LrSchedule::LrSchedule;
  double lr_factor(int64_t step) const override {
    double f;
    if (in_warmup(step, f)) return f;
    return cosine_between(progress(step, spec_.warmup_steps, spec_.max_steps), spec_.min_lr_ratio);
  }
};

class Constant : public LrSchedule {
 public:
  using LrSchedule::LrSchedule;
  double lr_factor(int64_t step) const override {
    double f;
    return in_warmup(step, f) ? f : 1.0;
  }
};

class Linear : public LrSchedule {
 public:
  using LrSchedule::LrSchedule;
  double lr_factor(int64_t step) const override {
    double f;
    if (in_warmup(step, f)) return f;
    double p = progress(step, spec_.warmup_steps, spec_.max_steps);
    return 1.0 - (1.0 - spec_.min_lr_ratio) * p;
  }
};

class Wsd : public LrSchedule {
 public:
  using LrSchedule::LrSchedule;
  double lr_factor(int64_t step) const override {
    double f;
    if (in_warmup(step, f)) return f;
    int64_t decay_steps = std::llround(spec_.decay_fraction * static_cast<double>(spec_.max_steps));
    int64_t decay_start = std::max(spec_.warmup_steps, spec_.max_steps - decay_steps);
    if (step < decay_start) return 1.0;
    double p = progress(step, decay_start, spec_.max_steps);
    if (spec_.decay_shape == "cosine") return cosine_between(p, spec_.min_lr_ratio);
    return 1.0 - (1.0 - spec_.min_lr_ratio) * p;
  }
};

template <typename T>
ScheduleFactory factory() {
  return [](const ScheduleSpec& spec) { return std::make_unique<T>(spec); };
}

}  // namespace

Registry<ScheduleFactory>& schedule_registry() {
  static Registry<ScheduleFactory> registry("scheduler.name",
                                            {{"warmup_cosine", factory<WarmupCosine>()},
                                             {"constant", factory<Constant>()},
                                             {"linear", factory<Linear>()},
                                             {"wsd", factory<Wsd>()}});
  return registry;
}

ScheduleSpec ScheduleSpec::from_config(const YAML::Node& config) {
  ScheduleSpec s;
  s.name = cfg::get_or<std::string>(config, "scheduler.name", s.name);
  s.warmup_steps = cfg::get_or<int64_t>(config, "scheduler.warmup_steps", s.warmup_steps);
  s.max_steps = cfg::has(config, "scheduler.max_steps")
                    ? cfg::get<int64_t>(config, "scheduler.max_steps")
                    : cfg::get<int64_t>(config, "trainer.max_steps");
  s.min_lr_ratio = cfg::get_or<double>(config, "scheduler.min_lr_ratio", s.min_lr_ratio);
  s.decay_fraction = cfg::get_or<double>(config, "scheduler.decay_fraction", s.decay_fraction);
  s.decay_shape = cfg::get_or<std::string>(config, "scheduler.decay_shape", s.decay_shape);

  auto shown = [](auto v) {
    std::ostringstream os;
    os << v;
    return os.str();
  };
  check_user(s.max_steps > 0,
             "config key 'trainer.max_steps' (or scheduler.max_steps): expected "
             "a positive step count, got " +
                 shown(s.max_steps));
  check_user(s.warmup_steps >= 0,
             "config key 'scheduler.warmup_steps': expected a step count "
             ">= 0, got " +
                 shown(s.warmup_steps));
  if (s.warmup_steps > s.max_steps) {
    // A short run (a smoke test, experiment=tiny) with the default warmup: warm up over the whole
    // run rather than refuse it. Said once per process.
    static bool warned = false;
    if (!warned)
      std::cerr << "warning: scheduler.warmup_steps=" << s.warmup_steps
                << " is longer than the run (" << s.max_steps << " steps); warming up over all "
                << s.max_steps << " steps\n";
    warned = true;
    s.warmup_steps = s.max_steps;
  }
  check_user(s.min_lr_ratio >= 0.0 && s.min_lr_ratio <= 1.0,
             "config key 'scheduler.min_lr_ratio': expected a value in [0, 1], got " +
                 shown(s.min_lr_ratio));
  check_user(s.decay_fraction > 0.0 && s.decay_fraction <= 1.0,
             "config key 'scheduler.decay_fraction': expected a value in (0, 1], got " +
                 shown(s.decay_fraction));
  check_user(
      s.decay_shape == "linear" || s.decay_shape == "cosine",
      "config key 'scheduler.decay_shape': expected linear or cosine, got '" + s.decay_shape + "'");
  return s;
}

bool LrSchedule::in_warmup(int64_t step, double& factor) const {
  if (step >= spec_.warmup_steps) return false;
  factor =
      static_cast<double>(std::max<int64_t>(step, 0) + 1) / static_cast<double>(spec_.warmup_steps);
  return true;
}

std::string LrSchedule::describe() const {
  std::ostringstream os;
  os << spec_.name << " warmup_steps=" << spec_.warmup_steps << " max_steps=" << spec_.max_steps
     << " min_lr_ratio=" << spec_.min_lr_ratio;
  if (spec_.name == "wsd")
    os << " decay_fraction=" << spec_.decay_fraction << " decay_shape=" << spec_.decay_shape;
  return os.str();
}

std::unique_ptr<LrSchedule> make_schedule(const ScheduleSpec& spec) {
  return schedule_registry().get(spec.name)(spec);
}

std::unique_ptr<LrSchedule> make_schedule(const YAML::Node& config) {
  return make_schedule(ScheduleSpec::from_config(config));
}

}  // namespace attnlab
