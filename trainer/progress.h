// Training progress display, `trainer.progress: auto|bar|plain|none` (auto = bar when stderr is a
// terminal, plain otherwise — e.g. Slurm logs):
//   bar:   one line rewritten in place ("\r...\x1b[K") at most every 0.1 s with step/total, loss,
//          lr, tokens/s, MFU and ETA; other messages are printed above it via message().
//   plain: the same fields as one log line every `trainer.log_every` steps (and at the last step).
//   none:  nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

#include "common/progress_meter.h"

namespace attnlab {

struct ProgressStats {
  int64_t step = 0;  // updates completed
  double loss = 0.0;
  double lr = 0.0;
  double tokens_per_s = 0.0;
  double mfu = -1.0;  // fraction in [0, 1]; < 0 = unknown (not shown)
};

class Progress {
 public:
  using Mode = ProgressMode;

  // mode_name: auto | bar | plain | none (UserError otherwise). `out` defaults to std::cerr.
  Progress(const std::string& mode_name, int64_t total_steps, int64_t log_every,
           std::ostream* out = nullptr, int64_t start_step = 0);

  // Call after every optimizer step.
  void update(const ProgressStats& stats);
  // A message line (eval results, checkpoint saved, ...) that does not break the bar.
  void message(const std::string& text);
  // Ends the bar line.
  void finish();

  Mode mode() const { return mode_; }
  // "step 10/100 | loss 3.2100 | lr 3.00e-04 | 1.2k tok/s | MFU 12.3% | ETA 1m05s"
  std::string format(const ProgressStats& stats) const;
  static std::string format_duration(double seconds);

 private:
  Mode mode_;
  int64_t total_, log_every_, start_step_;
  std::ostream* out_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool bar_drawn_ = false;
};

}  // namespace attnlab
