// Device placement rules (device/cuda_device.h) without a GPU: resolve_device is a pure
// function of the requested name, the visible GPU count and the launcher's local rank, so auto,
// per-rank pinning and every bad request are checked here with made-up counts. The CLI gives one
// line and exit code 2 for nccl without a GPU and for cuda without a GPU. With two GPUs, the NCCL
// data-parallel equivalence (2 ranks x b == 1 process x 2b) runs through mpirun; elsewhere it skips
// and says why.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "common/error.h"
#include "tests/support/attnlab_command.h"
#include "tests/support/temp_dir.h"
#include "trainer/checkpoint.h"
#include "device/cuda_device.h"

using namespace attnlab;

namespace {

std::string error_of(const std::string& name, int64_t gpus, const LocalRank& local = {}) {
  try {
    resolve_device(name, gpus, local);
  } catch (const UserError& error) {
    return error.what();
  }
  return "";
}

const std::string kAttnlab = std::string(ATTNLAB_BINARY_DIR) + "/attnlab";

std::string tiny_run(const std::string& dir) {
  return " run.dir=" + dir +
         " model.d_model=32 model.n_layers=2 model.n_heads=2 model.max_seq_len=32"
         " model.dropout=0.0 data.seq_len=32 data.max_documents=20 trainer.eval_every=0"
         " trainer.eval_batches=2 trainer.checkpoint_every=0 trainer.log_every=1"
         " trainer.threads=1 trainer.progress=none scheduler.warmup_steps=3 optim.lr=0.003";
}

}  // namespace

TEST(DeviceSelection, CpuAndAuto) {
  EXPECT_TRUE(resolve_device("cpu", 0, {}).is_cpu());
  EXPECT_TRUE(resolve_device("cpu", 4, {}).is_cpu());
  EXPECT_TRUE(resolve_device("auto", 0, {}).is_cpu());
  EXPECT_EQ(resolve_device("auto", 2, {}), torch::Device("cuda:0"));
}

TEST(DeviceSelection, EachLocalRankTakesItsGpu) {
  LocalRank local;
  local.rank = 1;
  local.size = 2;
  local.source = "OMPI_COMM_WORLD_LOCAL_RANK";
  EXPECT_EQ(resolve_device("cuda", 2, local), torch::Device("cuda:1"));
  EXPECT_EQ(resolve_device("auto", 4, local), torch::Device("cuda:1"));
  EXPECT_EQ(resolve_device("cuda:0", 2, local), torch::Device("cuda:0"));  // explicit wins
  EXPECT_EQ(resolve_device("cuda", 1, {}), torch::Device("cuda:0"));
}

TEST(DeviceSelection, BadRequestsNameTheKeyAndWhatWasFound) {
  const std::string no_gpu = error_of("cuda", 0);
  EXPECT_EQ(no_gpu.rfind("trainer.device=cuda: no CUDA GPU is visible", 0), 0u) << no_gpu;
  const std::string out_of_range = error_of("cuda:3", 2);
  EXPECT_NE(out_of_range.find("CUDA device index 3 does not exist (2 visible: cuda:0..1)"),
            std::string::npos)
      << out_of_range;
  LocalRank crowded;
  crowded.rank = 0;
  crowded.size = 4;
  crowded.source = "SLURM_LOCALID";
  const std::string too_many = error_of("cuda", 2, crowded);
  EXPECT_NE(too_many.find("4 ranks run on this node (SLURM_LOCALID) but only 2 GPUs are visible"),
            std::string::npos)
      << too_many;
  EXPECT_NE(error_of("gpu", 1).find("trainer.device: 'gpu' is not a device"), std::string::npos);
  EXPECT_NE(error_of("meta", 1).find("trainer.device: 'meta' is not supported"), std::string::npos);
}

TEST(DeviceSelection, LocalRankFromLauncherEnvironment) {
  for (const char* name :
       {"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALRANKID",
        "MPI_LOCALNRANKS", "SLURM_LOCALID", "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE",
        "LOCAL_RANK", "LOCAL_WORLD_SIZE"})
    unsetenv(name);
  EXPECT_EQ(local_rank_from_env().source, "");
  setenv("LOCAL_RANK", "3", 1);
  setenv("LOCAL_WORLD_SIZE", "4", 1);
  LocalRank torchrun = local_rank_from_env();
  EXPECT_EQ(torchrun.rank, 3);
  EXPECT_EQ(torchrun.size, 4);
  setenv("SLURM_LOCALID", "1", 1);
  setenv("SLURM_STEP_TASKS_PER_NODE", "2(x3)", 1);
  LocalRank slurm = local_rank_from_env();  // Slurm is more specific than torchrun's variables
  EXPECT_EQ(slurm.source, "SLURM_LOCALID");
  EXPECT_EQ(slurm.rank, 1);
  EXPECT_EQ(slurm.size, 2);
  for (const char* name :
       {"LOCAL_RANK", "LOCAL_WORLD_SIZE", "SLURM_LOCALID", "SLURM_STEP_TASKS_PER_NODE"})
    unsetenv(name);
}

TEST(DeviceSelection, CliErrorsWithoutAGpu) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a GPU is visible: these are the no-GPU errors";
  attnlab::testing::TempDir dir;
  auto nccl =
      attnlab::testing::run_command(kAttnlab + " train dist.backend=nccl" +
                                    tiny_run(dir.path() + "/nccl") + " trainer.max_steps=1");
  EXPECT_EQ(nccl.exit_code, 2) << nccl.output;
  EXPECT_NE(nccl.output.find("error: dist.backend=nccl: no CUDA GPU is visible"), std::string::npos)
      << nccl.output;
  auto automatic = attnlab::testing::run_command(kAttnlab + " train trainer.device=auto" +
                                                 tiny_run(dir.path() + "/auto") +
                                                 " trainer.max_steps=2 trainer.deterministic=true");
  EXPECT_EQ(automatic.exit_code, 0) << automatic.output;  // auto falls back to the CPU
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/nccl/checkpoints"));
}

TEST(NcclDataParallel, TwoRanksMatchOneProcessWithDoubleBatch) {
  const int64_t gpus = cuda_device_count();
  if (gpus < 2)
    GTEST_SKIP() << "needs 2 CUDA GPUs for 2 NCCL ranks; " << gpus
                 << " visible (the gloo/MPI versions of this test run in tests/distributed)";
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) GTEST_SKIP() << "mpirun not found";
  attnlab::testing::TempDir dir;
  const std::string two = dir.path() + "/two", one = dir.path() + "/one";
  const std::string common =
      " trainer.device=cuda trainer.deterministic=true trainer.max_steps=20 dist.backend=nccl";
  auto run = attnlab::testing::run_command(
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 mpirun -np 2 "
      "--oversubscribe --bind-to none " +
      kAttnlab + " train" + tiny_run(two) + common + " data.batch_size=4");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = attnlab::testing::run_command(kAttnlab + " train" + tiny_run(one) + common +
                                      " data.batch_size=8");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto a = read_checkpoint_model_state(resolve_checkpoint(two));
  const auto b = read_checkpoint_model_state(resolve_checkpoint(one));
  double diff = 0, norm = 0;
  for (const auto& [name, tensor] : b) {
    diff += (a.at(name) - tensor).pow(2).sum().item<double>();
    norm += tensor.pow(2).sum().item<double>();
  }
  EXPECT_LT(std::sqrt(diff / norm), 1e-5);
}
