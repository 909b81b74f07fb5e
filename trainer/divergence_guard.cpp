// See divergence_guard.h.
#include "trainer/divergence_guard.h"

#include <cmath>
#include <cstdio>
#include <type_traits>
#include <utility>

#include "common/error.h"

namespace attnlab {

std::string short_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.6g", value);
  return buffer;
}

std::string nonfinite_loss(const std::map<std::string, double>& logged) {
  for (const auto& [name, value] : logged)
    if ((name.rfind("train/loss/", 0) == 0 || name.rfind("train/aux/", 0) == 0) &&
        !std::isfinite(value))
      return "loss term '" + name.substr(6) + "' is " + short_number(value);
  auto total = logged.find("train/loss");
  if (total != logged.end() && !std::isfinite(total->second))
    return "the loss is " + short_number(total->second);
  return "";
}

DivergenceGuard::DivergenceGuard(const NonFiniteOptions& options, std::string run_dir, Warn warn)
    : options_(options),
      run_dir_(std::move(run_dir)),
      warn_(std::move(warn)),
      loss_spikes_(options.spike_window()),
      grad_spikes_(options.spike_window()) {}

void DivergenceGuard::halt(int64_t step, const std::string& fault,
                           const std::string& why_not_recovered) const {
  std::string last;
  try {
    last = resolve_checkpoint(run_dir_);
  } catch (const UserError&) {
  }
  throw UserError("training diverged at step " + std::to_string(step) + ": " + fault +
                  "; nothing of this step was saved; last good checkpoint: " +
                  (last.empty() ? "none" : last + " (running the same command resumes from it)") +
                  "; " + why_not_recovered);
}

DivergenceGuard::Action DivergenceGuard::handle(int64_t step, const std::string& fault,
                                                bool update_applied) {
  switch (options_.policy()) {
    case NonFinitePolicy::kHalt:
      halt(step, fault, "lower optim.lr, or set trainer.on_nonfinite=skip or rollback");
    case NonFinitePolicy::kSkip:
      if (update_applied)
        halt(step, fault,
             "trainer.on_nonfinite=skip cannot undo an update that was already applied (set "
             "trainer.on_nonfinite=rollback, or lower optim.lr)");
      if (consecutive_skips_ >= options_.max_consecutive_skips())
        halt(step, fault,
             "trainer.on_nonfinite=skip dropped " + std::to_string(consecutive_skips_) +
                 " batches in a row (trainer.max_consecutive_skips); lower optim.lr");
      ++consecutive_skips_;
      ++skipped_batches_;
      warn_("step " + std::to_string(step) + ": " + fault + "; batch dropped (" +
            std::to_string(skipped_batches_) + " so far)");
      return Action::kSkip;
    case NonFinitePolicy::kRollback:
      if (rollbacks_ >= options_.max_rollbacks())
        halt(step, fault,
             std::to_string(rollbacks_) +
                 " rollbacks already (trainer.max_rollbacks); lower optim.lr");
      return Action::kRollback;
  }
  halt(step, fault, "unknown trainer.on_nonfinite policy");
}

void DivergenceGuard::rolled_back(int64_t step, const std::string& fault,
                                  const std::string& checkpoint, const TrainState& restored) {
  restore_windows(restored);
  rollbacks_ += 1;
  lr_scale_ *= options_.rollback_lr_factor();
  warn_("step " + std::to_string(step) + ": " + fault + "; rolled back to " + checkpoint +
        " (step " + std::to_string(restored.step) + "), LR scale now " + short_number(lr_scale_) +
        ", rollback " + std::to_string(rollbacks_) + " of " +
        std::to_string(options_.max_rollbacks()));
}

bool DivergenceGuard::drop_spike(int64_t step, double loss, double grad_norm) {
  if (options_.spike_window() <= 0) return false;
  const double loss_z = loss_spikes_.zscore(loss), grad_z = grad_spikes_.zscore(grad_norm);
  if (loss_z <= options_.spike_zscore() && grad_z <= options_.spike_zscore()) return false;
  ++spikes_;
  const bool drop = options_.spike_skip() && consecutive_skips_ < options_.max_consecutive_skips();
  warn_("step " + std::to_string(step) + ": spike, loss " + short_number(loss) + " (z-score " +
        short_number(loss_z) + "), grad norm " + short_number(grad_norm) + " (z-score " +
        short_number(grad_z) + ") over the last " + std::to_string(options_.spike_window()) +
        " steps" + (drop ? "; batch dropped" : ""));
  if (drop) {
    ++consecutive_skips_;
    ++spike_skips_;
  }
  return drop;
}

void DivergenceGuard::accept(double loss, double grad_norm) {
  consecutive_skips_ = 0;
  loss_spikes_.push(loss);
  grad_spikes_.push(grad_norm);
}

bool DivergenceGuard::take_injection(int64_t step) {
  if (injected_ || options_.inject_nonfinite_at_step() != step) return false;
  injected_ = true;  // once per process: a rollback or skip then recovers
  return true;
}

bool DivergenceGuard::needs_checkpoint_before_training() const {
  return options_.policy() == NonFinitePolicy::kRollback;
}

void DivergenceGuard::store(TrainState& state) const {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.17g", lr_scale_);
  state.extra["guard.lr_scale"] = buffer;
  state.extra["guard.rollbacks"] = std::to_string(rollbacks_);
  state.extra["guard.skipped_batches"] = std::to_string(skipped_batches_);
  state.extra["guard.spikes"] = std::to_string(spikes_);
  state.extra["guard.spike_skips"] = std::to_string(spike_skips_);
  state.extra["guard.loss_window"] = loss_spikes_.serialize();
  state.extra["guard.grad_norm_window"] = grad_spikes_.serialize();
}

void DivergenceGuard::restore(const TrainState& state) {
  auto number = [&](const std::string& key, auto& out, auto fallback) {
    out = fallback;
    auto it = state.extra.find(key);
    if (it == state.extra.end()) return;
    try {
      if constexpr (std::is_same_v<std::decay_t<decltype(out)>, double>)
        out = std::stod(it->second);
      else
        out = std::stoll(it->second);
    } catch (const std::exception&) {
      throw UserError("checkpoint meta entry '" + key + "' is not a number: '" + it->second + "'");
    }
  };
  number("guard.lr_scale", lr_scale_, 1.0);
  number("guard.rollbacks", rollbacks_, int64_t{0});
  number("guard.skipped_batches", skipped_batches_, int64_t{0});
  number("guard.spikes", spikes_, int64_t{0});
  number("guard.spike_skips", spike_skips_, int64_t{0});
  restore_windows(state);
}

void DivergenceGuard::restore_windows(const TrainState& state) {
  auto text = [&](const std::string& key) {
    auto it = state.extra.find(key);
    return it == state.extra.end() ? std::string() : it->second;
  };
  loss_spikes_.restore(text("guard.loss_window"));
  grad_spikes_.restore(text("guard.grad_norm_window"));
}

void DivergenceGuard::add_metrics(std::map<std::string, double>& logged) const {
  if (skipped_batches_ > 0)
    logged["nonfinite/skipped_batches"] = static_cast<double>(skipped_batches_);
  if (rollbacks_ > 0) {
    logged["nonfinite/rollbacks"] = static_cast<double>(rollbacks_);
    logged["nonfinite/lr_scale"] = lr_scale_;
  }
  if (spikes_ > 0) logged["spikes/detected"] = static_cast<double>(spikes_);
  if (spike_skips_ > 0) logged["spikes/skipped_batches"] = static_cast<double>(spike_skips_);
}

}  // namespace attnlab
