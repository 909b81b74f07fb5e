// How `attnlab train` stops on SIGINT, SIGTERM and SIGHUP: while the handlers are installed a
// signal only sets a flag, and the loop stops at the end of the step with a checkpoint (exit code
// 130 or 143). A second signal exits at once, without a checkpoint, as a user who presses Ctrl-C
// twice expects. The previous handlers come back when the installer goes out of scope.
#pragma once

#include <array>
#include <csignal>

namespace attnlab {

class StopSignalHandlers {
 public:
  StopSignalHandlers();
  ~StopSignalHandlers();
  StopSignalHandlers(const StopSignalHandlers&) = delete;
  StopSignalHandlers& operator=(const StopSignalHandlers&) = delete;

 private:
  std::array<struct sigaction, 3> previous_{};
};

// The signal received since the handlers were installed; 0 when none.
int received_stop_signal();

}  // namespace attnlab
