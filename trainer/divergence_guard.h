// The training loop's divergence policy, in one room: what a step whose loss, gradient or update
// is not finite does (`trainer.on_nonfinite`: halt | skip | rollback), the spike detector on the
// loss and the gradient norm (`trainer.spike_*`), and the counters and LR scale these keep. The
// counters and the detectors' windows travel in the checkpoint (TrainState::extra), so a resumed
// run keeps a lowered LR and replays bitwise. Every decision depends only on values that are
// equal on all ranks (rank-averaged losses, all-reduced gradients, identical parameters), so
// ranks agree without a collective. The building blocks (options, finiteness scans, the z-score
// detector) are in nonfinite_guard.h.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "trainer/checkpoint.h"
#include "trainer/nonfinite_guard.h"

namespace attnlab {

// "" when every logged loss is finite, else which one is not: a term ("train/loss/<term>",
// "train/aux/<module loss>") before the total, which is their sum. Diagnostics
// ("train/stat/...") take no part in the gradient and are not checked.
std::string nonfinite_loss(const std::map<std::string, double>& logged);

// A number as the guard's messages show it ("%.6g").
std::string short_number(double value);

class DivergenceGuard {
 public:
  using Warn = std::function<void(const std::string&)>;
  enum class Action {
    kSkip,      // the batch is dropped; the step does not count
    kRollback,  // the loop reloads the newest checkpoint, then calls rolled_back()
  };

  // `run_dir` names the last good checkpoint in a halt; `warn` prints a line the user must see.
  DivergenceGuard(const NonFiniteOptions& options, std::string run_dir, Warn warn);

  // A fault found in step `step` (1-based): halts with a UserError naming the step, the fault and
  // the last good checkpoint, or returns what the loop does instead. `update_applied`: the
  // optimizer already changed the weights, which dropping the batch cannot undo.
  Action handle(int64_t step, const std::string& fault, bool update_applied);
  // After a rollback reloaded `restored` from `checkpoint`: the detectors' windows come from the
  // checkpoint, the counters go on, and the LR scale is multiplied by trainer.rollback_lr_factor.
  void rolled_back(int64_t step, const std::string& fault, const std::string& checkpoint,
                   const TrainState& restored);
  // The UserError of a halt (also for a rollback that finds no checkpoint).
  [[noreturn]] void halt(int64_t step, const std::string& fault,
                         const std::string& why_not_recovered) const;

  // The spike detector for an otherwise good step: true when its batch is to be dropped.
  bool drop_spike(int64_t step, double loss, double grad_norm);
  // A step was applied: its loss and gradient norm join the detectors' windows.
  void accept(double loss, double grad_norm);
  // The test hook trainer.inject_nonfinite_at_step: true once per process, at that step.
  bool take_injection(int64_t step);

  double lr_scale() const { return lr_scale_; }
  // trainer.on_nonfinite=rollback needs a checkpoint to go back to from the first step on.
  bool needs_checkpoint_before_training() const;
  // The checkpoint's share: counters, LR scale and the detectors' windows.
  void store(TrainState& state) const;
  void restore(const TrainState& state);
  // Metrics appear once something happened, so runs without trouble log what they did.
  void add_metrics(std::map<std::string, double>& logged) const;

 private:
  void restore_windows(const TrainState& state);

  NonFiniteOptions options_;
  std::string run_dir_;
  Warn warn_;
  SpikeDetector loss_spikes_, grad_spikes_;
  double lr_scale_ = 1.0;
  int64_t rollbacks_ = 0;
  int64_t skipped_batches_ = 0;  // dropped for a non-finite loss or gradient
  int64_t spikes_ = 0;           // detected by the spike detector
  int64_t spike_skips_ = 0;      // of those, dropped (trainer.spike_skip)
  int64_t consecutive_skips_ = 0;
  bool injected_ = false;
};

}  // namespace attnlab
