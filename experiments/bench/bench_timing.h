// Shared timing for the benchmarks: median time of `runs` calls after one warm-up call.
// Wall time by default; with ATTNLAB_BENCH_CLOCK=cpu the process's CPU time instead, which a busy
// machine distorts far less when the benchmark runs on one thread (time spent waiting for a core
// is not counted).
#pragma once

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

namespace attnlab::bench {

inline bool cpu_clock() {
  const char* clock = std::getenv("ATTNLAB_BENCH_CLOCK");
  return clock != nullptr && std::strcmp(clock, "cpu") == 0;
}

inline double now_ms() {
  if (cpu_clock()) {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
  }
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline const char* clock_name() { return cpu_clock() ? "process CPU time" : "wall time"; }

inline double median_ms(const std::function<void()>& step, int runs) {
  step();  // warm-up
  std::vector<double> samples;
  for (int i = 0; i < runs; ++i) {
    const double start = now_ms();
    step();
    samples.push_back(now_ms() - start);
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace attnlab::bench
