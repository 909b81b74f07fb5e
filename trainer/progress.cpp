// Implementation of progress.h. ETA extrapolates the mean time per step since construction (or
// since the resumed step), which is stable enough and needs no smoothing state.
#include "trainer/progress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "common/error.h"

namespace attnlab {
namespace {

std::string human_rate(double v) {
  char buf[32];
  if (v >= 1e6)
    std::snprintf(buf, sizeof(buf), "%.2fM", v / 1e6);
  else if (v >= 1e3)
    std::snprintf(buf, sizeof(buf), "%.1fk", v / 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  return buf;
}

}  // namespace

Progress::Progress(const std::string& mode_name, int64_t total_steps, int64_t log_every,
                   std::ostream* out, int64_t start_step)
    : mode_(parse_progress_mode(mode_name, "trainer.progress")),
      total_(total_steps),
      log_every_(std::max<int64_t>(1, log_every)),
      start_step_(start_step),
      out_(out ? out : &std::cerr),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - std::chrono::seconds(1)) {}

std::string Progress::format_duration(double seconds) { return attnlab::format_duration(seconds); }

std::string Progress::format(const ProgressStats& stats) const {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  int64_t done = stats.step - start_step_;
  double eta = done > 0
                   ? elapsed / static_cast<double>(done) * static_cast<double>(total_ - stats.step)
                   : NAN;
  char buf[256];
  int n = std::snprintf(buf, sizeof(buf), "step %lld/%lld | loss %.4f | lr %.2e | %s tok/s",
                        static_cast<long long>(stats.step), static_cast<long long>(total_),
                        stats.loss, stats.lr, human_rate(stats.tokens_per_s).c_str());
  std::string line(buf, static_cast<size_t>(n));
  if (stats.mfu >= 0) {
    std::snprintf(buf, sizeof(buf), " | MFU %.1f%%", 100.0 * stats.mfu);
    line += buf;
  }
  return line + " | ETA " + format_duration(eta);
}

void Progress::update(const ProgressStats& stats) {
  if (mode_ == Mode::kNone) return;
  if (mode_ == Mode::kPlain) {
    if (stats.step % log_every_ == 0 || stats.step == total_) *out_ << format(stats) << "\n";
    out_->flush();
    return;
  }
  auto now = std::chrono::steady_clock::now();
  if (stats.step != total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  *out_ << "\r" << format(stats) << "\x1b[K";
  out_->flush();
  bar_drawn_ = true;
}

void Progress::message(const std::string& text) {
  if (mode_ == Mode::kNone) return;
  if (mode_ == Mode::kBar && bar_drawn_) *out_ << "\r\x1b[K";
  *out_ << text << "\n";
  out_->flush();
  // The bar is redrawn on the next update.
  last_draw_ = std::chrono::steady_clock::now() - std::chrono::seconds(1);
}

void Progress::finish() {
  if (mode_ == Mode::kBar && bar_drawn_) *out_ << "\n";
  bar_drawn_ = false;
  out_->flush();
}

}  // namespace attnlab
