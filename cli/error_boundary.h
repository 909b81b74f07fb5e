// The error boundary every attnlab command runs inside (apps/attnlab/runtime_entry.cpp): whatever
// a command throws ends here as one `error: ...` line on stderr and an exit code.
//   * bad input: UserError, or a YAML::Exception that escaped the config engine -> exit code 2,
//     the whole message (UserError messages are written for users);
//   * anything else: c10::Error, std::bad_alloc, any std::exception, even a non-std exception
//     -> exit code 1, the first line of the message only (c10::Error carries a backtrace).
// The full report (command line, exception type, whole message with LibTorch's backtrace) is
// appended to <run dir>/error.log once the command has named its run directory
// (common/error_log.h); for internal errors the line names that file. While a command runs,
// std::terminate (an exception escaping a worker thread or a destructor) reports the same way
// and exits 1 instead of aborting.
#pragma once

#include <functional>

namespace attnlab {

int run_with_error_boundary(const std::function<int()>& command, int argc, char** argv);

}  // namespace attnlab
