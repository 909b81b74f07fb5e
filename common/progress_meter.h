// A progress display for long work that is not training steps: `prepare` (bytes tokenised),
// `eval` (batches), `sample` (tokens). Like trainer.progress (trainer/progress.h), it draws a bar
// rewritten in place when stderr is a terminal and plain lines otherwise, so logs stay readable:
//   bar:   "prepare  42% [########......] 41.9/100.0 MB | 6.1 MB/s | ETA 9s" at most every 0.1 s
//   plain: the same line at every further 10%, never more often than every 2 s, and a last
//          one at the end (skipped for work that took under 2 s and printed nothing before)
//   none:  nothing (tests, ranks other than 0, or a caller that asks for silence).
// The meter knows only numbers; what they count is its `unit` ("MB", "batches", "tokens") and
// `scale` (a count is divided by scale before it is shown: 1e6 for bytes shown as MB).
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

namespace attnlab {

enum class ProgressMode { kBar, kPlain, kNone };

// auto (bar when stderr is a terminal, else plain) | bar | plain | none; anything else is a
// UserError naming `config_key`. Shared with the training display (trainer/progress.h).
ProgressMode parse_progress_mode(const std::string& name, const std::string& config_key);

// "45s", "1m05s", "2h01m"; "?" for a negative or non-finite time.
std::string format_duration(double seconds);

class ProgressMeter {
 public:
  using Mode = ProgressMode;

  // mode_name: auto (bar on a terminal, else plain) | bar | plain | none; anything else is a
  // UserError naming `config_key`. `total` <= 0 means unknown: no percentage and no ETA.
  ProgressMeter(std::string label, double total, std::string unit, double scale = 1.0,
                const std::string& mode_name = "auto", std::ostream* out = nullptr,
                const std::string& config_key = "progress");
  ~ProgressMeter();
  ProgressMeter(const ProgressMeter&) = delete;
  ProgressMeter& operator=(const ProgressMeter&) = delete;

  // Sets the amount done so far (not an increment); draws when due.
  void update(double done);
  void add(double amount) { update(done_ + amount); }
  // Draws the final state and ends the bar line; the total becomes what was done (it may have
  // been an estimate). Idempotent.
  void finish();

  Mode mode() const { return mode_; }
  double done() const { return done_; }
  // The line that update() would draw now, without the terminal control characters.
  std::string format() const;

 private:
  void draw(bool final_line);

  std::string label_, unit_;
  double total_, scale_, done_ = 0.0;
  Mode mode_;
  std::ostream* out_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int last_decile_ = 0, plain_lines_ = 0;
  bool bar_drawn_ = false, finished_ = false;
};

}  // namespace attnlab
