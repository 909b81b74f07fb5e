// Data-parallel equivalence: 2 ranks (MPI, and gloo) x per-rank batch b must reach the same
// parameters as one process with batch 2b (rank 0's broadcast init, gradients averaged in buckets
// during backward, clipping after averaging, no communication on accumulation micro-steps). The
// parent test runs the 1-process reference itself and launches `mpirun -np 2` on this binary for
// the 2-rank run.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "distributed/distributed.h"
#include "distributed/gradient_reducer.h"
#include "tests/support/mpi_launch.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

// A small MLP with one parameter the forward never uses (an unused-parameter case for buckets).
struct TinyMlpImpl : torch::nn::Module {
  TinyMlpImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(8, 32));
    fc2 = register_module("fc2", torch::nn::Linear(32, 32));
    fc3 = register_module("fc3", torch::nn::Linear(32, 4));
    unused = register_parameter("unused", torch::zeros({5}));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return fc3(torch::tanh(fc2(torch::tanh(fc1(x)))));
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr};
  torch::Tensor unused;
};
TORCH_MODULE(TinyMlp);

constexpr int kSteps = 20;
constexpr int kPerRankBatch = 8;
constexpr double kClip = 0.2;  // small enough that clipping is active on some steps

struct TrainResult {
  torch::Tensor params;  // all parameters, flattened
  int clipped_steps = 0;
};

// Trains for kSteps on fixed data. Rank r of `world` takes rows [r*b, (r+1)*b) of each step's
// global batch of world*b rows, split into `accum` micro-batches.
TrainResult train(DistributedContext& context, int world, int per_rank_batch, int accum,
                  size_t bucket_bytes, ReducerStats* stats_out = nullptr,
                  size_t* buckets_out = nullptr) {
  torch::manual_seed(1234 + context.rank());  // ranks start different; broadcast must fix it
  TinyMlp model;
  context.broadcast_module(*model);
  GradientReducer reducer(context, *model, bucket_bytes);
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));

  auto generator = at::make_generator<at::CPUGeneratorImpl>(7);
  const int global_batch = 2 * kPerRankBatch;
  auto inputs = torch::randn({kSteps, global_batch, 8}, generator);
  auto targets = torch::randn({kSteps, global_batch, 4}, generator);
  const int micro = per_rank_batch / accum;

  TrainResult result;
  for (int step = 0; step < kSteps; ++step) {
    optimizer.zero_grad();
    for (int m = 0; m < accum; ++m) {
      const bool sync = (m == accum - 1);
      const int64_t allreduces_before = reducer.stats().allreduces;
      reducer.begin_step(sync);
      const int64_t row = context.rank() * per_rank_batch + m * micro;
      auto x = inputs[step].narrow(0, row, micro);
      auto y = targets[step].narrow(0, row, micro);
      auto loss = torch::mse_loss(model->forward(x), y) / accum;
      loss.backward();
      if (!sync) EXPECT_EQ(reducer.stats().allreduces, allreduces_before) << "micro-step comm";
    }
    reducer.finish();
    const double norm = torch::nn::utils::clip_grad_norm_(model->parameters(), kClip);
    if (norm > kClip) ++result.clipped_steps;
    optimizer.step();
  }
  std::vector<torch::Tensor> flat;
  for (const auto& p : model->parameters()) flat.push_back(p.detach().flatten());
  result.params = torch::cat(flat);
  (void)world;
  if (stats_out) *stats_out = reducer.stats();
  if (buckets_out) *buckets_out = reducer.num_buckets();
  return result;
}

YAML::Node dist_config(double timeout_s, const std::string& backend) {
  YAML::Node config;
  config["dist"]["backend"] = backend;
  config["dist"]["timeout_s"] = timeout_s;
  return config;
}

const char* worker_scenario() { return std::getenv("ATTNLAB_DIST_WORKER"); }

// ---- worker side: runs only under mpirun, started by the tests below ----

TEST(MpiWorker, Run) {
  if (worker_scenario() == nullptr) GTEST_SKIP() << "worker test; started by the mpirun tests";
  torch::set_num_threads(1);
  // "<what>" runs over MPI, "<what>_gloo" over c10d's ProcessGroupGloo.
  std::string scenario = worker_scenario();
  std::string backend = "mpi";
  if (scenario.size() > 5 && scenario.substr(scenario.size() - 5) == "_gloo") {
    backend = "gloo";
    scenario.resize(scenario.size() - 5);
  }
  const fs::path out = std::getenv("ATTNLAB_DIST_OUT");
  auto context = init_distributed(dist_config(scenario == "timeout" ? 1.0 : 60.0, backend));
  ASSERT_EQ(context->world_size(), 2);
  ASSERT_EQ(context->collectives()->name(), backend);

  if (scenario == "equivalence" || scenario == "equivalence_accum") {
    const int accum = scenario == "equivalence" ? 1 : 2;
    ReducerStats stats;
    size_t buckets = 0;
    TrainResult result =
        train(*context, 2, kPerRankBatch, accum, /*bucket_bytes=*/2048, &stats, &buckets);
    if (context->is_main()) {
      torch::save(result.params, (out / "params.pt").string());
      std::ofstream(out / "stats.txt")
          << buckets << " " << stats.allreduces << " " << stats.launched_in_backward << " "
          << stats.steps << " " << context->thread_multiple() << "\n";
    }
  } else if (scenario == "throw") {
    run_guarded(*context, [&] {
      if (context->rank() == 1) throw std::runtime_error("boom on rank 1");
      context->barrier();  // rank 0 would wait here forever without the abort
      return 0;
    });
  } else if (scenario == "timeout") {
    if (context->rank() == 1) {
      std::this_thread::sleep_for(std::chrono::seconds(60));  // a hung rank
    } else {
      context->allreduce_mean(1.0);
    }
  }
}

// ---- parent side ----

fs::path fresh_dir(const std::string& name) {
  fs::path dir =
      fs::temp_directory_path() / ("attnlab_dist_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void expect_two_ranks_match_reference(const std::string& scenario, int accum) {
  if (!testing::mpirun_available()) GTEST_SKIP() << "mpirun not installed";
  const fs::path dir = fresh_dir(scenario);
  auto run = testing::run_worker(2, "MpiWorker.Run", scenario, dir.string());
  ASSERT_EQ(run.exit_code, 0) << run.output;

  DistributedContext single;  // one process, batch 2b
  TrainResult reference = train(single, 1, 2 * kPerRankBatch, accum, 2048);
  EXPECT_GT(reference.clipped_steps, 0) << "clip threshold never reached: test too weak";

  torch::Tensor distributed;
  torch::load(distributed, (dir / "params.pt").string());
  const double relative = (distributed - reference.params).norm().item<double>() /
                          reference.params.norm().item<double>();
  EXPECT_LT(relative, 1e-5);
  // Sanity: training moved the parameters far more than the tolerance.
  torch::manual_seed(1234);
  TinyMlp initial;
  std::vector<torch::Tensor> flat;
  for (const auto& p : initial->parameters()) flat.push_back(p.detach().flatten());
  EXPECT_GT((torch::cat(flat) - reference.params).norm().item<double>() /
                reference.params.norm().item<double>(),
            1e-2);

  size_t buckets = 0;
  int64_t allreduces = 0, in_backward = 0, steps = 0;
  int thread_multiple = 0;
  std::ifstream(dir / "stats.txt") >> buckets >> allreduces >> in_backward >> steps >>
      thread_multiple;
  EXPECT_GT(buckets, 2u) << "2 KiB buckets should split the MLP";
  EXPECT_EQ(steps, kSteps);
  EXPECT_EQ(allreduces, static_cast<int64_t>(buckets) * kSteps) << "one all-reduce per bucket";
  // Buckets start from autograd hooks while backward still runs (overlap), except the bucket
  // holding the unused parameter, which can only start in finish().
  EXPECT_GE(in_backward, static_cast<int64_t>(buckets - 1) * kSteps / 2);
  fs::remove_all(dir);
}

TEST(DataParallel, TwoRanksMatchOneRankWithDoubleBatch) {
  expect_two_ranks_match_reference("equivalence", 1);
}

TEST(DataParallel, AccumulationMicroStepsDoNotCommunicate) {
  expect_two_ranks_match_reference("equivalence_accum", 2);
}

TEST(DataParallel, GlooBackendMatchesOneRankWithDoubleBatch) {
  expect_two_ranks_match_reference("equivalence_gloo", 1);
}

TEST(DataParallel, GlooAccumulationMicroStepsDoNotCommunicate) {
  expect_two_ranks_match_reference("equivalence_accum_gloo", 2);
}

void expect_exception_aborts_job(const std::string& scenario) {
  if (!testing::mpirun_available()) GTEST_SKIP() << "mpirun not installed";
  const fs::path dir = fresh_dir(scenario);
  auto run = testing::run_worker(2, "MpiWorker.Run", scenario, dir.string(), 60);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.exit_code, 124) << "job hung until the outer timeout:\n" << run.output;
  EXPECT_NE(run.output.find("boom on rank 1"), std::string::npos) << run.output;
  EXPECT_LT(run.seconds, 30.0);
  fs::remove_all(dir);
}

TEST(DataParallel, ExceptionOnOneRankAbortsTheJob) { expect_exception_aborts_job("throw"); }

TEST(DataParallel, GlooExceptionOnOneRankAbortsTheJob) {
  expect_exception_aborts_job("throw_gloo");
}

void expect_hung_rank_times_out(const std::string& scenario) {
  if (!testing::mpirun_available()) GTEST_SKIP() << "mpirun not installed";
  const fs::path dir = fresh_dir(scenario);
  auto run = testing::run_worker(2, "MpiWorker.Run", scenario, dir.string(), 60);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.exit_code, 124) << "job hung until the outer timeout:\n" << run.output;
  // Our deadline ("did not complete within") or gloo's own timeout, set to the same 1 s.
  const bool ours = run.output.find("did not complete within dist.timeout_s") != std::string::npos;
  const bool gloo = run.output.find("Timed out") != std::string::npos;
  EXPECT_TRUE(ours || gloo) << run.output;
  EXPECT_LT(run.seconds, 30.0) << "rank 1 sleeps 60 s; the 1 s timeout must abort it";
  fs::remove_all(dir);
}

TEST(DataParallel, HungRankHitsCollectiveTimeout) { expect_hung_rank_times_out("timeout"); }

TEST(DataParallel, GlooHungRankHitsCollectiveTimeout) {
  expect_hung_rank_times_out("timeout_gloo");
}

}  // namespace
}  // namespace attnlab
