// Helpers for tests that start real multi-rank jobs: the test binary re-runs itself under
// `mpirun -np N` with a gtest filter selecting a worker test and an environment variable naming
// the worker's scenario. Worker tests skip themselves when that variable is absent.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/support/attnlab_command.h"

namespace attnlab::testing {

inline std::string self_executable() {
  char buffer[4096];
  const ssize_t n = readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
  return std::string(buffer, n > 0 ? static_cast<size_t>(n) : 0);
}

// Environment for running mpirun as root with one thread per rank.
inline std::string mpirun_env() {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 ";
}

// `mpirun` flags that work on a small, shared, possibly containerised machine: oversubscribe
// (ranks > cores is fine), no core binding (other jobs share the cores), shared-memory transport
// without CMA (ptrace is often forbidden in containers).
inline std::string mpirun_prefix(int ranks) {
  return "mpirun -np " + std::to_string(ranks) +
         " --oversubscribe --bind-to none --mca btl self,vader "
         "--mca btl_vader_single_copy_mechanism none ";
}

// Runs this test binary's `filter` test on `ranks` ranks with ATTNLAB_DIST_WORKER=scenario and
// ATTNLAB_DIST_OUT=out_dir; `timeout` kills a job that hangs despite everything.
inline CommandResult run_worker(int ranks, const std::string& filter, const std::string& scenario,
                                const std::string& out_dir, int timeout_s = 120) {
  const std::string command = "ATTNLAB_DIST_WORKER=" + scenario + " ATTNLAB_DIST_OUT=" + out_dir +
                              " " + mpirun_env() + "timeout " + std::to_string(timeout_s) + " " +
                              mpirun_prefix(ranks) + self_executable() +
                              " --gtest_filter=" + filter;
  return run_command(command);
}

inline bool mpirun_available() { return std::system("command -v mpirun >/dev/null 2>&1") == 0; }

}  // namespace attnlab::testing
