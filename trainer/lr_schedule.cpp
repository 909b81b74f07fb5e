// The four schedules of lr_schedule.h, their registry table (one line per schedule) and the
// binding of the `scheduler` group into the chosen schedule's options.
#include "trainer/lr_schedule.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "common/config_access.h"
#include "common/error.h"
#include "config/options.h"

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

// A value as describe() and messages print it (ostream's default: 0.1, 1e-05).
template <typename T>
std::string shown(T value) {
  std::ostringstream os;
  os << value;
  return os.str();
}

// warmup_cosine and linear: a warmup, then a decay to min_lr_ratio at max_steps.
class Decaying : public LrSchedule {
 public:
  Decaying(const ScheduleChoice& choice, const DecayOptions& options)
      : LrSchedule(choice.name, options.warmup_steps(), choice.max_steps), options_(options) {}

 protected:
  std::string describe_options() const override {
    return " min_lr_ratio=" + shown(options_.min_lr_ratio());
  }
  DecayOptions options_;
};

class WarmupCosine : public Decaying {
 public:
  using Decaying::Decaying;
  double lr_factor(int64_t step) const override {
    double f;
    if (in_warmup(step, f)) return f;
    return cosine_between(progress(step, warmup_steps(), max_steps()), options_.min_lr_ratio());
  }
};

class Constant : public LrSchedule {
 public:
  Constant(const ScheduleChoice& choice, const WarmupOptions& options)
      : LrSchedule(choice.name, options.warmup_steps(), choice.max_steps) {}
  double lr_factor(int64_t step) const override {
    double f;
    return in_warmup(step, f) ? f : 1.0;
  }
};

class Linear : public Decaying {
 public:
  using Decaying::Decaying;
  double lr_factor(int64_t step) const override {
    double f;
    if (in_warmup(step, f)) return f;
    double p = progress(step, warmup_steps(), max_steps());
    return 1.0 - (1.0 - options_.min_lr_ratio()) * p;
  }
};

class Wsd : public LrSchedule {
 public:
  Wsd(const ScheduleChoice& choice, const WsdOptions& options)
      : LrSchedule(choice.name, options.warmup_steps(), choice.max_steps), options_(options) {}
  double lr_factor(int64_t step) const override {
    double f;
    if (in_warmup(step, f)) return f;
    const double floor = options_.min_lr_ratio();
    int64_t decay_steps =
        std::llround(options_.decay_fraction() * static_cast<double>(max_steps()));
    int64_t decay_start = std::max(warmup_steps(), max_steps() - decay_steps);
    if (step < decay_start) return 1.0;
    double p = progress(step, decay_start, max_steps());
    if (options_.decay_shape() == "cosine") return cosine_between(p, floor);
    return 1.0 - (1.0 - floor) * p;
  }

 protected:
  std::string describe_options() const override {
    return " min_lr_ratio=" + shown(options_.min_lr_ratio()) +
           " decay_fraction=" + shown(options_.decay_fraction()) +
           " decay_shape=" + options_.decay_shape();
  }

 private:
  WsdOptions options_;
};

// A registry entry for schedule class T built from options type O.
template <typename T, typename O>
ScheduleSpec entry() {
  return {O{}, [](const ScheduleChoice& choice) -> std::unique_ptr<LrSchedule> {
            return std::make_unique<T>(choice, std::get<O>(choice.options));
          }};
}

}  // namespace

Registry<ScheduleSpec>& schedule_registry() {
  static Registry<ScheduleSpec> registry("scheduler.name",
                                         {{"warmup_cosine", entry<WarmupCosine, DecayOptions>()},
                                          {"constant", entry<Constant, WarmupOptions>()},
                                          {"linear", entry<Linear, DecayOptions>()},
                                          {"wsd", entry<Wsd, WsdOptions>()}});
  return registry;
}

namespace {

// scheduler.name; none (a config without the scheduler group): the registry's default entry.
template <class ConfigTree>
std::string schedule_name(const ConfigTree& config) {
  return cfg::has(config, "scheduler.name") ? cfg::get<std::string>(config, "scheduler.name")
                                            : "warmup_cosine";
}

}  // namespace

template <class ConfigTree>
ScheduleOptions schedule_options(const ConfigTree& config) {
  const std::string name = schedule_name(config);
  const config::BindScope scope{"scheduler '" + name + "'", {"name"}};
  const YAML::Node group = cfg::find(config, "scheduler");
  return std::visit(
      [&](const auto& defaults) -> ScheduleOptions {
        return config::bind<std::decay_t<decltype(defaults)>>(group, "scheduler", scope);
      },
      schedule_registry().get(name).defaults);
}

template <class ConfigTree>
ScheduleChoice schedule_choice(const ConfigTree& config) {
  ScheduleChoice choice;
  choice.name = schedule_name(config);
  choice.options = schedule_options(config);
  const std::optional<int64_t> own_steps =
      std::visit([](const auto& o) { return o.max_steps(); }, choice.options);
  choice.max_steps = own_steps ? *own_steps : cfg::get<int64_t>(config, "trainer.max_steps");
  check_user(choice.max_steps > 0,
             "config key 'trainer.max_steps' (or scheduler.max_steps): expected "
             "a positive step count, got " +
                 shown(choice.max_steps) +
                 " (to evaluate weights without training: attnlab eval run_dir=<a run or a "
                 "folder attnlab import wrote>)");
  return choice;
}

LrSchedule::LrSchedule(std::string name, int64_t warmup_steps, int64_t max_steps)
    : name_(std::move(name)), warmup_steps_(warmup_steps), max_steps_(max_steps) {
  if (warmup_steps_ > max_steps_) {
    // A short run (a smoke test, experiment=tiny) with the default warmup: warm up over the whole
    // run rather than refuse it. Said once per process.
    static bool warned = false;
    if (!warned)
      std::cerr << "warning: scheduler.warmup_steps=" << warmup_steps_
                << " is longer than the run (" << max_steps_ << " steps); warming up over all "
                << max_steps_ << " steps\n";
    warned = true;
    warmup_steps_ = max_steps_;
  }
}

bool LrSchedule::in_warmup(int64_t step, double& factor) const {
  if (step >= warmup_steps_) return false;
  factor = static_cast<double>(std::max<int64_t>(step, 0) + 1) / static_cast<double>(warmup_steps_);
  return true;
}

std::string LrSchedule::describe() const {
  return name_ + " warmup_steps=" + std::to_string(warmup_steps_) +
         " max_steps=" + std::to_string(max_steps_) + describe_options();
}

std::unique_ptr<LrSchedule> make_schedule(const ScheduleChoice& choice) {
  return schedule_registry().get(choice.name).make(choice);
}

template <class ConfigTree>
std::unique_ptr<LrSchedule> make_schedule(const ConfigTree& config) {
  return make_schedule(schedule_choice(config));
}

template ScheduleOptions schedule_options(const YAML::Node&);
template ScheduleChoice schedule_choice(const YAML::Node&);
template std::unique_ptr<LrSchedule> make_schedule(const YAML::Node&);

namespace {

// The max_steps of a schedule's describe() record ("warmup_cosine warmup_steps=2 max_steps=300
// ..."), 0 when the record has none.
int64_t recorded_max_steps(const std::string& described) {
  const std::string key = " max_steps=";
  const size_t at = described.find(key);
  if (at == std::string::npos) return 0;
  try {
    return std::stoll(described.substr(at + key.size()));
  } catch (const std::exception&) {
    return 0;
  }
}

ScheduleChoice with_length(ScheduleChoice choice, int64_t max_steps) {
  choice.max_steps = max_steps;
  return choice;
}

std::string shown_factor(double factor) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g", factor);
  return text;
}

}  // namespace

ScheduleExtension::ScheduleExtension(const ScheduleChoice& choice, int64_t finished_at)
    : policy_(std::visit([](const auto& o) { return o.extend(); }, choice.options)),
      finished_at_(finished_at),
      finished_(make_schedule(with_length(choice, finished_at))),
      longer_(make_schedule(choice)),
      restarted_(make_schedule(with_length(choice, choice.max_steps - finished_at))) {}

double ScheduleExtension::lr_factor(int64_t step) const {
  if (step < finished_at_ || policy_ == "recompute") return longer_->lr_factor(step);
  if (policy_ == "hold") return finished_->lr_factor(finished_at_);
  return restarted_->lr_factor(step - finished_at_);
}

std::string ScheduleExtension::describe() const {
  const int64_t last = longer_->max_steps();
  const std::string from = shown_factor(finished_->lr_factor(finished_at_ - 1));
  std::string line = "the run finished its " + longer_->name() + " schedule at step " +
                     std::to_string(finished_at_) + " and now trains to step " +
                     std::to_string(last) + ": scheduler.extend=" + policy_ + ", so the lr factor ";
  if (policy_ == "recompute")
    line += "follows the schedule over " + std::to_string(last) + " steps: " + from + " at step " +
            std::to_string(finished_at_ - 1) + ", " + shown_factor(lr_factor(finished_at_)) +
            " at step " + std::to_string(finished_at_) + " (hold keeps " + from +
            "; restart starts a new cycle)";
  else if (policy_ == "hold")
    line +=
        "stays at " + shown_factor(lr_factor(finished_at_)) + " (the rate the run finished with)";
  else
    line += "starts a new cycle over the " + std::to_string(last - finished_at_) +
            " new steps: " + shown_factor(lr_factor(finished_at_)) + " at step " +
            std::to_string(finished_at_);
  return line;
}

std::optional<ScheduleExtension> resume_schedule_extension(
    const ScheduleChoice& choice, int64_t step, const std::string& recorded_schedule,
    std::map<std::string, std::string>& extra) {
  // The run finished the schedule its checkpoint records, and now trains on: a new extension
  // (also of a run extended before); else the extension an earlier resume recorded, if any.
  int64_t finished_at = 0;
  const int64_t previous = recorded_max_steps(recorded_schedule);
  const auto recorded = extra.find("schedule_extended_from");
  if (previous > 0 && step >= previous && choice.max_steps > previous)
    finished_at = previous;
  else if (recorded != extra.end())
    finished_at = std::stoll(recorded->second);
  if (finished_at <= 0 || finished_at >= choice.max_steps) return std::nullopt;
  extra["schedule_extended_from"] = std::to_string(finished_at);
  return ScheduleExtension(choice, finished_at);
}

}  // namespace attnlab
