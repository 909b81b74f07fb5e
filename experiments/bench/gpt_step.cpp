// Benchmark: training-step throughput of attnlab's GPT against the same model written with
// PyTorch's Python front end (experiments/bench/gpt_step_pytorch.py, eager, same shapes, same
// thread count), both measured in this run. Prints tokens/s, step time, MFU and peak RSS of
// each and the ratio attnlab / PyTorch (target >= 1.2).
//   bench_gpt_step [d_model n_layers n_heads seq_len batch steps threads rounds=3]
// Defaults are the default experiment (128 / 4 / 4 / 256 / 16).
#include <sys/resource.h>
#include <torch/csrc/autograd/profiler.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "common/allocator_tuning.h"
#include "common/thread_environment.h"
#include "modules/gpt.h"
#include "trainer/mfu.h"

using namespace attnlab;

int main(int argc, char** argv) {
  // The same thread-pool waiting policy as `attnlab` (inherited by the Python baseline too).
  ensure_thread_environment(argv);
  tune_allocator();
  auto arg = [&](int i, int64_t fallback) { return argc > i ? std::atoll(argv[i]) : fallback; };
  const int64_t d_model = arg(1, 128), n_layers = arg(2, 4), n_heads = arg(3, 4);
  const int64_t seq_len = arg(4, 256), batch = arg(5, 16), steps = arg(6, 20), threads = arg(7, 2);
  const int64_t rounds = std::max<int64_t>(1, arg(8, 3));
  torch::set_num_threads(static_cast<int>(threads));
  GptOptions o;
  o.vocab_size = 260;
  o.d_model = d_model;
  o.n_layers = n_layers;
  o.n_heads = n_heads;
  o.max_seq_len = seq_len;
  o.attention_params = YAML::Load("{name: mha, mask: causal, rope: true, bias: false}");
  torch::manual_seed(0);
  Gpt model(o);
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-3));
  auto tokens = torch::randint(0, o.vocab_size, {batch, seq_len + 1}, torch::kLong);
  auto input = tokens.narrow(1, 0, seq_len), target = tokens.narrow(1, 1, seq_len);
  auto step = [&] {
    // Gradients set to none, as the trainer does (trainer/optimizer.h: clear_gradients).
    for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
    auto logits = model->forward(input).logits;
    auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, o.vocab_size}),
                                                     target.reshape({-1}));
    loss.backward();
    optimizer.step();
  };
  for (int i = 0; i < 3; ++i) step();
  if (const char* trace = std::getenv("ATTNLAB_PROFILE")) {
    // One profiled step as a chrome trace (op-level CPU times), to see where a step goes.
    torch::autograd::profiler::RecordProfile profile(trace);
    step();
  }
  const std::string script =
      std::string(ATTNLAB_SOURCE_DIR) + "/experiments/bench/gpt_step_pytorch.py";
  char command[1024];
  std::snprintf(command, sizeof command, "/usr/bin/python3 %s %lld %lld %lld %lld %lld %lld %lld",
                script.c_str(), (long long)d_model, (long long)n_layers, (long long)n_heads,
                (long long)seq_len, (long long)batch, (long long)steps, (long long)threads);
  // Rounds alternate the two programs so that a slow spell of a shared machine hits both; the
  // ratio reported is the median of the per-round ratios.
  std::vector<double> cpp_tps, py_tps, ratios;
  double py_rss = 0;
  for (int64_t round = 0; round < rounds; ++round) {
    auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < steps; ++i) step();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;
    cpp_tps.push_back(batch * seq_len / seconds);
    // The same model in PyTorch's Python front end, same process tree, same thread count.
    FILE* pipe = popen(command, "r");
    if (!pipe) return 1;
    double tps = 0, ms = 0;
    if (std::fscanf(pipe, "%lf %lf %lf", &tps, &ms, &py_rss) != 3 || pclose(pipe) != 0) {
      std::fprintf(stderr, "PyTorch baseline failed (is python3-torch installed?)\n");
      return 1;
    }
    py_tps.push_back(tps);
    ratios.push_back(cpp_tps.back() / tps);
    std::printf("round %lld: attnlab %.0f tokens/s, PyTorch %.0f tokens/s, ratio %.2f\n",
                (long long)round + 1, cpp_tps.back(), tps, ratios.back());
    std::fflush(stdout);
  }
  auto median = [](std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
  };
  const double cpp_median = median(cpp_tps), py_median = median(py_tps);
  const double peak = measure_matmul_peak(torch::Device(torch::kCPU)).flops_per_s;
  const double flops_per_token = gpt_flops_per_token(*model, seq_len);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf(
      "config: d_model %lld layers %lld heads %lld T %lld batch %lld threads %lld, "
      "%lld rounds of %lld steps (medians)\n",
      (long long)d_model, (long long)n_layers, (long long)n_heads, (long long)seq_len,
      (long long)batch, (long long)threads, (long long)rounds, (long long)steps);
  std::printf("attnlab (C++):   %9.0f tokens/s  %7.1f ms/step  MFU %5.1f%%  peak RSS %6.0f MiB\n",
              cpp_median, batch * seq_len / cpp_median * 1000,
              compute_mfu(flops_per_token, cpp_median, peak) * 100, usage.ru_maxrss / 1024.0);
  std::printf("PyTorch (eager): %9.0f tokens/s  %7.1f ms/step  MFU %5.1f%%  peak RSS %6.0f MiB\n",
              py_median, batch * seq_len / py_median * 1000,
              compute_mfu(flops_per_token, py_median, peak) * 100, py_rss);
  std::printf("ratio attnlab/PyTorch tokens/s: %.2fx (median of rounds; target >= 1.20)\n",
              median(ratios));
  return 0;
}
