// Runs the real `attnlab` executable of this build from a test and captures its exit code and
// output (stdout + stderr), for end-to-end command tests.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace attnlab::test {

struct CommandRun {
  int code;
  std::string output;
};

inline CommandRun run_attnlab(const std::string& args) {
  const std::string command = std::string(ATTNLAB_BINARY_DIR) + "/attnlab " + args + " 2>&1";
  CommandRun run{-1, ""};
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return run;
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe)) run.output += buffer.data();
  const int status = pclose(pipe);
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace attnlab::test
