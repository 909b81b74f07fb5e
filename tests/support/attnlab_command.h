// Runs commands from tests and captures their exit code and output (stdout + stderr): any shell
// command (run_command: Python references, mpirun, Slurm tools) and the real `attnlab` executable
// of this build (run_attnlab, for end-to-end command tests).
#pragma once

#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <string>

namespace attnlab::testing {

struct CommandResult {
  int exit_code = -1;  // 128 + signal for a process a signal ended
  bool signaled = false;
  std::string output;  // stdout and stderr together
  double seconds = 0.0;
};

inline CommandResult run_command(const std::string& command) {
  CommandResult result;
  const auto start = std::chrono::steady_clock::now();
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> chunk{};
  size_t n = 0;
  while ((n = fread(chunk.data(), 1, chunk.size(), pipe)) > 0)
    result.output.append(chunk.data(), n);
  const int status = pclose(pipe);
  result.signaled = !WIFEXITED(status);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace attnlab::testing

namespace attnlab::test {

struct CommandRun {
  int code;  // -1 when a signal ended the process
  std::string output;
};

inline CommandRun run_attnlab(const std::string& args) {
  const auto run =
      attnlab::testing::run_command(std::string(ATTNLAB_BINARY_DIR) + "/attnlab " + args);
  return {run.signaled ? -1 : run.exit_code, run.output};
}

}  // namespace attnlab::test
