// Benchmark: training-step throughput of attnlab's GPT against the same model written with
// PyTorch's Python front end (experiments/bench/gpt_step_pytorch.py:
// F.scaled_dot_product_attention, same shapes, same thread count), in eager mode and under
// torch.compile, all measured in this run. The three alternate round by round (the Python baselines
// are persistent processes, so torch.compile runs once, in their untimed warm-up). Prints tokens/s,
// step time, MFU and peak RSS of each and the median per-round ratios attnlab / eager and attnlab /
// compiled.
//   bench_gpt_step [d_model n_layers n_heads seq_len batch steps threads rounds=3]
// Defaults are the default experiment (128 / 4 / 4 / 256 / 16). The thread-pool environment
// (OMP_WAIT_POLICY...) is whatever this process was started with, and the baselines inherit it.
// Do not use OMP_WAIT_POLICY=active here: the idle processes' workers would spin on the cores.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/csrc/autograd/profiler.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "common/allocator_tuning.h"
#include "common/subprocess.h"
#include "modules/attention/mha.h"
#include "modules/gpt.h"
#include "trainer/mfu.h"

using namespace attnlab;

namespace {

// A persistent Python baseline: started once, asked for one timed round per `run` line.
class PythonBaseline {
 public:
  PythonBaseline(const std::vector<std::string>& argv) {
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(to_child[0], STDIN_FILENO);
      dup2(from_child[1], STDOUT_FILENO);
      close(to_child[1]);
      close(from_child[0]);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    in_ = fdopen(to_child[1], "w");
    out_ = fdopen(from_child[0], "r");
    char ready[16] = {};
    if (std::fscanf(out_, "%15s", ready) != 1 || std::string(ready) != "ready")
      throw std::runtime_error("PyTorch baseline '" + argv[1] + " " + argv[2] +
                               "' failed to start (run scripts/setup.sh for .venv)");
  }
  ~PythonBaseline() {
    std::fputs("quit\n", in_);
    std::fclose(in_);
    std::fclose(out_);
    waitpid(pid_, nullptr, 0);
  }
  // tokens/s of one round; peak RSS (MiB) of the process so far in `rss`.
  double round(double& rss) {
    std::fputs("run\n", in_);
    std::fflush(in_);
    double tps = 0, ms = 0;
    if (std::fscanf(out_, "%lf %lf %lf", &tps, &ms, &rss) != 3)
      throw std::runtime_error("PyTorch baseline failed mid-run");
    return tps;
  }

 private:
  pid_t pid_ = -1;
  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
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
  o.attention_module_options = MhaModuleOptions().rope(true).bias(false);
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
  auto baseline_argv = [&](const std::string& mode) {
    std::vector<std::string> argv = {project_python(), script, mode};
    for (int64_t v : {d_model, n_layers, n_heads, seq_len, batch, steps, threads})
      argv.push_back(std::to_string(v));
    return argv;
  };
  std::fprintf(stderr, "starting the PyTorch baselines (torch.compile takes a minute)...\n");
  PythonBaseline eager(baseline_argv("eager"));
  PythonBaseline compiled(baseline_argv("compiled"));
  // Rounds alternate the three programs so that a slow spell of a shared machine hits all; the
  // ratios reported are medians of the per-round ratios.
  std::vector<double> cpp_tps, eager_tps, compiled_tps, eager_ratios, compiled_ratios;
  double eager_rss = 0, compiled_rss = 0;
  for (int64_t round = 0; round < rounds; ++round) {
    auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < steps; ++i) step();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;
    cpp_tps.push_back(batch * seq_len / seconds);
    eager_tps.push_back(eager.round(eager_rss));
    compiled_tps.push_back(compiled.round(compiled_rss));
    eager_ratios.push_back(cpp_tps.back() / eager_tps.back());
    compiled_ratios.push_back(cpp_tps.back() / compiled_tps.back());
    std::printf(
        "round %lld: attnlab %.0f, eager %.0f, compiled %.0f tokens/s; ratios %.2f / %.2f\n",
        (long long)round + 1, cpp_tps.back(), eager_tps.back(), compiled_tps.back(),
        eager_ratios.back(), compiled_ratios.back());
    std::fflush(stdout);
  }
  auto median = [](std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
  };
  const double cpp_median = median(cpp_tps);
  const double peak = measure_matmul_peak(torch::Device(torch::kCPU)).flops_per_s;
  const double flops_per_token = gpt_flops_per_token(*model, seq_len);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf(
      "config: d_model %lld layers %lld heads %lld T %lld batch %lld threads %lld, "
      "%lld rounds of %lld steps (medians)\n",
      (long long)d_model, (long long)n_layers, (long long)n_heads, (long long)seq_len,
      (long long)batch, (long long)threads, (long long)rounds, (long long)steps);
  auto report = [&](const char* name, double tps, double rss_mib) {
    std::printf("%-20s %9.0f tokens/s  %7.1f ms/step  MFU %5.1f%%  peak RSS %6.0f MiB\n", name, tps,
                batch * seq_len / tps * 1000, compute_mfu(flops_per_token, tps, peak) * 100,
                rss_mib);
  };
  report("attnlab (C++):", cpp_median, usage.ru_maxrss / 1024.0);
  report("PyTorch eager:", median(eager_tps), eager_rss);
  report("PyTorch compiled:", median(compiled_tps), compiled_rss);
  std::printf("ratio attnlab/eager tokens/s:    %.2fx (median of per-round ratios)\n",
              median(eager_ratios));
  std::printf("ratio attnlab/compiled tokens/s: %.2fx (median of per-round ratios)\n",
              median(compiled_ratios));
  return 0;
}
