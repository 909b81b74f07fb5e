// Shared timing for the benchmarks: median wall time of `runs` calls after one warm-up call.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

namespace attnlab::bench {

inline double median_ms(const std::function<void()>& step, int runs) {
  step();  // warm-up
  std::vector<double> samples;
  for (int i = 0; i < runs; ++i) {
    auto start = std::chrono::steady_clock::now();
    step();
    samples.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace attnlab::bench
