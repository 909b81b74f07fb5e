// See stop_signals.h. Only async-signal-safe calls in the handler.
#include "trainer/stop_signals.h"

#include <unistd.h>

#include <atomic>

namespace attnlab {

namespace {

std::atomic<int> stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "signal flag must be lock-free");
constexpr std::array<int, 3> kSignals{SIGINT, SIGTERM, SIGHUP};

extern "C" void on_stop_signal(int signal_number) {
  if (stop_signal.exchange(signal_number) != 0) {
    static const char message[] = "\nsecond stop signal: exiting now, without a checkpoint\n";
    (void)!write(STDERR_FILENO, message, sizeof(message) - 1);
    _exit(signal_number == SIGINT ? 130 : 143);
  }
  static const char message[] =
      "\nstopping after this step with a checkpoint (send the signal again to exit at once)\n";
  (void)!write(STDERR_FILENO, message, sizeof(message) - 1);
}

}  // namespace

StopSignalHandlers::StopSignalHandlers() {
  stop_signal = 0;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  for (size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &action, &previous_[i]);
}

StopSignalHandlers::~StopSignalHandlers() {
  for (size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &previous_[i], nullptr);
}

int received_stop_signal() { return stop_signal.load(); }

}  // namespace attnlab
