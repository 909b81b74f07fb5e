// Single-process behaviour of the distributed pieces: launcher detection, config validation,
// no-op collectives, the autograd-hook threading assumption, and the pre-emption flag.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "common/error.h"
#include "distributed/distributed.h"
#include "distributed/gradient_reducer.h"
#include "distributed/preemption.h"

namespace attnlab {
namespace {

YAML::Node config_with(const std::string& yaml) { return YAML::Load(yaml); }

TEST(DistributedContext, SingleProcessWithoutLauncher) {
  if (launched_by_mpi_launcher()) GTEST_SKIP() << "running under a launcher";
  auto context = init_distributed(config_with("dist: {backend: mpi}"));
  EXPECT_EQ(context->rank(), 0);
  EXPECT_EQ(context->world_size(), 1);
  EXPECT_TRUE(context->is_main());
  EXPECT_FALSE(context->is_distributed());
  EXPECT_DOUBLE_EQ(context->allreduce_mean(3.5), 3.5);
  EXPECT_TRUE(context->allreduce_any(true));
  EXPECT_EQ(context->broadcast_string("run/dir"), "run/dir");
  context->barrier();
  int ran = 0;
  EXPECT_EQ(run_guarded(*context,
                        [&] {
                          ++ran;
                          return 7;
                        }),
            7);
  EXPECT_EQ(ran, 1);
  // Single process: errors propagate so the CLI reports them normally.
  EXPECT_THROW(run_guarded(*context, []() -> int { throw UserError("bad"); }), UserError);
}

TEST(DistributedContext, DefaultsAndValidation) {
  DistOptions defaults = dist_options_from_config(YAML::Node());
  EXPECT_EQ(defaults.backend, "mpi");
  EXPECT_DOUBLE_EQ(defaults.bucket_mb, 25.0);
  EXPECT_THROW(dist_options_from_config(config_with("dist: {backend: smoke}")), UserError);
  EXPECT_THROW(dist_options_from_config(config_with("dist: {bucket_mb: 0}")), UserError);
  EXPECT_THROW(dist_options_from_config(config_with("dist: {timeout_s: -1}")), UserError);
  EXPECT_THROW(dist_options_from_config(config_with("dist: {timeout_s: soon}")), UserError);
}

TEST(DistributedContext, NcclWithoutAGpuIsAUserError) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "a GPU is visible (tests/device covers nccl)";
  try {
    init_distributed(config_with("dist: {backend: nccl}"));
    FAIL() << "nccl accepted without a GPU";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find("dist.backend=nccl: no CUDA GPU is visible"),
              std::string::npos)
        << error.what();
  }
}

TEST(DistributedContext, GlooWithoutLauncherIsASingleProcess) {
  if (launched_by_mpi_launcher()) GTEST_SKIP() << "running under a launcher";
  auto context = init_distributed(config_with("dist: {backend: gloo}"));
  EXPECT_EQ(context->world_size(), 1);
  EXPECT_EQ(context->collectives(), nullptr);
}

// The reducer starts all-reduces from tensor hooks; with MPI_THREAD_FUNNELED-level libraries that
// is only safe when CPU autograd runs hooks on the thread that called backward(). Check it.
TEST(DistributedContext, CpuAutogradHooksRunOnCallingThread) {
  auto weight = torch::randn({4, 4}, torch::requires_grad());
  std::thread::id hook_thread;
  weight.register_hook([&](torch::Tensor) { hook_thread = std::this_thread::get_id(); });
  (weight * 2).sum().backward();
  EXPECT_EQ(hook_thread, std::this_thread::get_id());
}

TEST(GradientReducer, NoOpInSingleProcess) {
  DistributedContext single;
  torch::nn::Linear layer(3, 2);
  GradientReducer reducer(single, *layer, 1 << 20);
  reducer.begin_step(true);
  layer->forward(torch::ones({1, 3})).sum().backward();
  auto before = layer->weight.grad().clone();
  reducer.finish();
  EXPECT_TRUE(torch::equal(before, layer->weight.grad()));
  EXPECT_EQ(reducer.num_buckets(), 0u);
}

TEST(Preemption, SignalSetsFlag) {
  install_preemption_handler();
  clear_preemption();
  EXPECT_FALSE(preemption_requested());
  std::raise(SIGUSR1);
  EXPECT_TRUE(preemption_requested());
  clear_preemption();
  EXPECT_FALSE(preemption_requested());
}

TEST(Preemption, RequeueOutsideSlurmIsRefused) {
  if (std::getenv("SLURM_JOB_ID") != nullptr) GTEST_SKIP() << "inside a Slurm job";
  std::string message;
  EXPECT_FALSE(requeue_slurm_job(&message));
  EXPECT_NE(message.find("SLURM_JOB_ID"), std::string::npos);
}

}  // namespace
}  // namespace attnlab
