// Data-parallel step benchmark (GitHub issue #7): time per training step of an MLP stack with the
// bucketed, overlapped GradientReducer, and the communication time left exposed after backward
// (time inside finish()), for a sweep of bucket sizes. The baseline in the same run is one bucket
// holding every gradient — an all-reduce that can start only when backward is over, as in
// LibTorch's dist-mnist example. Run it with experiments/bench/run_ddp_step.sh, which runs
// 1 rank and `mpirun -np 2` (1 thread per rank) and prints both tables.
//
//   bench_ddp_step [steps=20] [width=512] [layers=8] [batch=64] [backend=mpi|gloo]
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "distributed/distributed.h"
#include "distributed/gradient_reducer.h"

using namespace attnlab;

namespace {

struct Result {
  double step_ms = 0.0;
  double exposed_ms = 0.0;
  size_t buckets = 0;
};

torch::nn::Sequential make_model(int64_t width, int64_t layers) {
  torch::nn::Sequential model;
  for (int64_t i = 0; i < layers; ++i) {
    model->push_back(torch::nn::Linear(width, width));
    model->push_back(torch::nn::Functional(torch::tanh));
  }
  return model;
}

Result run(DistributedContext& context, double bucket_mb, int steps, int64_t width, int64_t layers,
           int64_t batch) {
  torch::manual_seed(0);
  auto model = make_model(width, layers);
  context.broadcast_module(*model);
  GradientReducer reducer(context, *model, static_cast<size_t>(bucket_mb * 1024 * 1024));
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(1e-3));
  auto x = torch::randn({batch, width});
  auto y = torch::randn({batch, width});
  const int warmup = 3;
  double total_s = 0.0, exposed_s = 0.0;
  for (int step = 0; step < warmup + steps; ++step) {
    context.barrier();  // ranks start each step together, so waits measure communication
    const auto start = std::chrono::steady_clock::now();
    optimizer.zero_grad();
    reducer.begin_step(true);
    torch::mse_loss(model->forward(x), y).backward();
    reducer.finish();
    optimizer.step();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (step >= warmup) {
      total_s += seconds;
      exposed_s += reducer.stats().last_exposed_comm_s;
    }
  }
  // Report the slowest rank's times (the step is as slow as its slowest rank).
  Result result;
  result.step_ms = context.allreduce_sum(total_s) / context.world_size() * 1000.0 / steps;
  result.exposed_ms = context.allreduce_sum(exposed_s) / context.world_size() * 1000.0 / steps;
  result.buckets = reducer.num_buckets();
  return result;
}

std::map<std::string, std::string> parse_args(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto eq = arg.find('=');
    if (eq != std::string::npos) args[arg.substr(0, eq)] = arg.substr(eq + 1);
  }
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  auto args = parse_args(argc, argv);
  auto get = [&](const std::string& key, int64_t fallback) {
    return args.count(key) ? std::stoll(args[key]) : fallback;
  };
  const int steps = static_cast<int>(get("steps", 20));
  const int64_t width = get("width", 512), layers = get("layers", 8), batch = get("batch", 64);
  torch::set_num_threads(1);

  const std::string backend = args.count("backend") ? args["backend"] : "mpi";
  auto context = init_distributed(YAML::Load("dist: {backend: " + backend + ", timeout_s: 300}"));
  return run_guarded(*context, [&] {
    const double grad_mb = static_cast<double>(layers * (width * width + width)) * 4 / (1 << 20);
    if (context->is_main()) {
      std::printf(
          "ddp_step: %d rank(s) (%s), 1 thread each, MLP %lldx%lld (%.1f MiB of gradients), "
          "batch %lld per rank, %d timed steps\n",
          context->world_size(), backend.c_str(), static_cast<long long>(layers),
          static_cast<long long>(width), grad_mb, static_cast<long long>(batch), steps);
      std::printf("%10s %8s %10s %12s %14s %18s\n", "bucket_mb", "buckets", "step_ms", "exposed_ms",
                  "exposed/step", "exposed_vs_1bucket");
    }
    // Baseline first: a single bucket bigger than all gradients (reduce after backward). An
    // untimed pass before it: the first configuration measured otherwise also pays one-time
    // costs (first touch of buffers, MPI's first large-message setup) and looks slower.
    const double single = grad_mb * 2 + 1;
    run(*context, single, steps, width, layers, batch);
    const Result baseline = run(*context, single, steps, width, layers, batch);
    std::vector<std::pair<double, Result>> rows = {{single, baseline}};
    for (double mb : {0.25, 1.0, 4.0, 25.0})
      rows.push_back({mb, run(*context, mb, steps, width, layers, batch)});
    if (context->is_main()) {
      for (const auto& [mb, r] : rows) {
        std::printf("%10.2f %8zu %10.2f %12.3f %14.3f %18.3f\n", mb, r.buckets, r.step_ms,
                    r.exposed_ms, r.exposed_ms / r.step_ms,
                    baseline.exposed_ms > 0 ? r.exposed_ms / baseline.exposed_ms : 0.0);
      }
      std::printf("(first row = one bucket: all-reduce after backward, the no-overlap baseline)\n");
    }
    return 0;
  });
}
