// Implementation of progress_meter.h. The rate and ETA extrapolate the mean rate since
// construction, as the training bar does.
#include "common/progress_meter.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "common/error.h"

namespace attnlab {
namespace {

std::string number_text(double value) {
  char buf[32];
  if (value >= 100 || value == std::floor(value))
    std::snprintf(buf, sizeof(buf), "%.0f", value);
  else
    std::snprintf(buf, sizeof(buf), "%.1f", value);
  return buf;
}

}  // namespace

ProgressMode parse_progress_mode(const std::string& name, const std::string& key) {
  if (name == "bar") return ProgressMode::kBar;
  if (name == "plain") return ProgressMode::kPlain;
  if (name == "none") return ProgressMode::kNone;
  if (name == "auto") return isatty(STDERR_FILENO) ? ProgressMode::kBar : ProgressMode::kPlain;
  throw UserError("config key '" + key + "': expected auto, bar, plain or none, got '" + name +
                  "'");
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long long>(std::llround(seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", s / 3600, s % 3600 / 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof(buf), "%llds", s);
  return buf;
}

ProgressMeter::ProgressMeter(std::string label, double total, std::string unit, double scale,
                             const std::string& mode_name, std::ostream* out,
                             const std::string& config_key)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      scale_(scale > 0 ? scale : 1.0),
      mode_(parse_progress_mode(mode_name, config_key)),
      out_(out ? out : &std::cerr),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressMeter::~ProgressMeter() {
  // An exception unwinding through the owner: end the bar line so the error starts on its own.
  if (bar_drawn_ && !finished_) *out_ << "\n" << std::flush;
}

std::string ProgressMeter::format() const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? done_ / elapsed : 0.0;
  std::string line = label_;
  char buf[64];
  if (total_ > 0) {
    const double fraction = std::clamp(done_ / total_, 0.0, 1.0);
    std::snprintf(buf, sizeof(buf), " %3d%% [", static_cast<int>(std::floor(fraction * 100)));
    line += buf;
    const int width = 20, filled = static_cast<int>(std::floor(fraction * width));
    line += std::string(static_cast<size_t>(filled), '#') +
            std::string(static_cast<size_t>(width - filled), '.') + "] ";
    line += number_text(done_ / scale_) + "/" + number_text(total_ / scale_) + " " + unit_;
  } else {
    line += " " + number_text(done_ / scale_) + " " + unit_;
  }
  std::snprintf(buf, sizeof(buf), " | %.1f %s/s", rate / scale_, unit_.c_str());
  line += buf;
  if (total_ > 0)
    line += " | " + (finished_ || done_ >= total_
                         ? "took " + format_duration(elapsed)
                         : "ETA " + format_duration(rate > 0 ? (total_ - done_) / rate : NAN));
  return line;
}

void ProgressMeter::draw(bool final_line) {
  if (mode_ == Mode::kBar) {
    *out_ << "\r" << format() << "\x1b[K";
    if (final_line) *out_ << "\n";
    *out_ << std::flush;
    bar_drawn_ = !final_line;
  } else if (mode_ == Mode::kPlain) {
    *out_ << format() << "\n" << std::flush;
    ++plain_lines_;
  }
  last_draw_ = std::chrono::steady_clock::now();
}

void ProgressMeter::update(double done) {
  done_ = done;
  if (mode_ == Mode::kNone || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (mode_ == Mode::kBar) {
    if (since >= 0.1) draw(false);
    return;
  }
  // plain: a line per further 10% (not more often than every 2 s), or every 30 s of an unknown
  // total.
  if (total_ > 0) {
    const int decile = static_cast<int>(std::floor(std::clamp(done_ / total_, 0.0, 1.0) * 10));
    if (decile > last_decile_ && decile < 10 && since >= 2.0) {
      last_decile_ = decile;
      draw(false);
    }
  } else if (since >= 30.0) {
    draw(false);
  }
}

void ProgressMeter::finish() {
  if (finished_) return;
  finished_ = true;
  // All the work is done even when the total was an estimate (file sizes for .jsonl text).
  if (total_ > 0) total_ = done_;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  // Plain logs get a final line only for work long enough to have been worth watching.
  if (mode_ == Mode::kBar || (mode_ == Mode::kPlain && (plain_lines_ > 0 || elapsed >= 2.0)))
    draw(true);
  bar_drawn_ = false;
}

}  // namespace attnlab
