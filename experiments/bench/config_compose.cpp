// bench_config_compose: time to compose (and resolve) the shipped default config tree, the work
// every `attnlab` command does at start-up. Prints the median of N runs and its ratio to the
// 20 ms target (ratio < 1 meets it). Usage: bench_config_compose [runs=50] [config_dir]
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "config/config.h"

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 50;
  attnlab::config::ComposeRequest request;
  if (argc > 2) request.config_dir = argv[2];
  const double target_ms = 20.0;
  auto time_ms = [&](const std::vector<std::string>& overrides) {
    request.overrides = overrides;
    std::vector<double> samples;
    for (int i = 0; i < runs; ++i) {
      auto start = std::chrono::steady_clock::now();
      YAML::Node config = attnlab::config::compose(request);
      auto stop = std::chrono::steady_clock::now();
      if (!config.IsMap()) return -1.0;
      samples.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
    }
    std::sort(samples.begin(), samples.end());
    return samples[samples.size() / 2];
  };
  try {
    double plain = time_ms({});
    double with_overrides =
        time_ms({"experiment=tiny", "model.d_model=256", "optim.lr=3e-4", "+extra.key=1"});
    std::printf(
        "config_compose default tree: median %.3f ms over %d runs; ratio to %.0f ms "
        "target: %.3f\n",
        plain, runs, target_ms, plain / target_ms);
    std::printf(
        "config_compose with experiment + 3 overrides: median %.3f ms; ratio to target: "
        "%.3f\n",
        with_overrides, with_overrides / target_ms);
    return plain < target_ms ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
