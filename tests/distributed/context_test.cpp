// Single-process behaviour of the distributed pieces: launcher detection, config validation,
// no-op collectives, the autograd-hook threading assumption, and the pre-emption flag.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <csignal>
#include <optional>
#include <string>
#include <thread>

#include "common/error.h"
#include "config/options.h"
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

// The message of the UserError that binding dist.* from `yaml` throws ("" when it binds).
std::string dist_error(const std::string& yaml) {
  try {
    dist_options_from_config(config_with(yaml));
  } catch (const UserError& error) {
    return error.what();
  }
  return "";
}

TEST(DistributedContext, DefaultsAndValidation) {
  DistOptions defaults = dist_options_from_config(YAML::Node());
  EXPECT_EQ(defaults.backend, "mpi");
  EXPECT_DOUBLE_EQ(defaults.bucket_mb, 25.0);
  EXPECT_DOUBLE_EQ(defaults.timeout_s, 600.0);
  EXPECT_EQ(defaults.store, std::nullopt);
  const DistOptions gloo =
      dist_options_from_config(config_with("dist: {backend: gloo, bucket_mb: 4, store: /s/f}"));
  EXPECT_EQ(gloo.backend, "gloo");
  EXPECT_DOUBLE_EQ(gloo.bucket_mb, 4.0);  // an int where the default is a float
  EXPECT_EQ(gloo.store, std::optional<std::string>("/s/f"));
  // Each bad key or value: one line naming the dotted key.
  EXPECT_EQ(dist_error("dist: {backend: smoke}"),
            "dist.backend: expected one of mpi, gloo, nccl, got 'smoke'");
  EXPECT_EQ(dist_error("dist: {bucket_mb: 0}"), "dist.bucket_mb: expected a number > 0, got 0");
  EXPECT_EQ(dist_error("dist: {timeout_s: -1}"), "dist.timeout_s: expected a number > 0, got -1");
  EXPECT_EQ(dist_error("dist: {timeout_s: soon}"), "dist.timeout_s: expected float, got 'soon'");
  EXPECT_EQ(dist_error("dist: {bucket: 8}").rfind("dist.bucket: dist has no option 'bucket'", 0),
            0u)
      << dist_error("dist: {bucket: 8}");
}

// configs/dist/mpi.yaml holds exactly DistOptions' defaults (a default changed on one side only
// fails here).
TEST(DistributedContext, ShippedDistFileHoldsTheStructDefaults) {
  const YAML::Node file =
      YAML::LoadFile(std::string(ATTNLAB_SOURCE_DIR) + "/configs/dist/mpi.yaml");
  ASSERT_TRUE(file.IsMap());
  std::string differences;
  for (const auto& line : config::differing_defaults<DistOptions>(file, "dist"))
    differences += line + "\n";
  EXPECT_EQ(differences, "");
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
