// sbatch script rendering (no cluster needed): the #SBATCH header from launcher.* options, and the
// argument round trip — the script is executed by bash with a stand-in `srun` that prints its
// arguments, so quoting of awkward override values is checked by a real shell.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "launch/slurm_script.h"
#include "tests/support/mpi_launch.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

bool contains_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

TEST(SbatchScript, HeaderFollowsOptions) {
  SlurmOptions options = slurm_options_from_config(YAML::Load(R"(
name: exp1
launcher: {name: slurm, nodes: 2, tasks_per_node: 4, cpus_per_task: 3, gpus_per_node: 1,
           mem: 16G, time: "02:00:00", partition: gpu, account: lab, qos: high,
           signal_delay_s: 90, sbatch_extra: ["--exclusive"], setup: ["module load openmpi"]}
)"));
  EXPECT_EQ(options.job_name(), std::optional<std::string>("exp1"));  // falls back to the run name
  SlurmJobSpec spec;
  spec.workdir = "/work dir";
  spec.output = "/runs/x/slurm-%j.out";
  spec.program = {"/bin/attnlab", "train"};
  spec.arguments = {"optim.lr=0.1"};
  const std::string script = render_sbatch_script(options, spec);
  for (const std::string line :
       {"#SBATCH --job-name=exp1", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4",
        "#SBATCH --cpus-per-task=3", "#SBATCH --gpus-per-node=1", "#SBATCH --mem=16G",
        "#SBATCH --time=02:00:00", "#SBATCH --partition=gpu", "#SBATCH --account=lab",
        "#SBATCH --qos=high", "#SBATCH --signal=USR1@90", "#SBATCH --requeue",
        "#SBATCH --exclusive", "#SBATCH --chdir='/work dir'", "module load openmpi",
        "#SBATCH --output=/runs/x/slurm-%j.out"})
    EXPECT_TRUE(contains_line(script, line)) << line << "\n" << script;
  EXPECT_EQ(script.find("--array"), std::string::npos);
  EXPECT_NE(script.find("srun --mpi=pmix /bin/attnlab train \"${ARGS[@]}\""), std::string::npos);
}

TEST(SbatchScript, BadOptionsAreUserErrors) {
  EXPECT_THROW(slurm_options_from_config(YAML::Load("launcher: {nodes: 0}")), UserError);
  EXPECT_THROW(slurm_options_from_config(YAML::Load("launcher: {cpus_per_task: many}")), UserError);
  EXPECT_THROW(slurm_options_from_config(YAML::Load("launcher: {array_parallelism: -2}")),
               UserError);
}

TEST(SbatchScript, GpuJobsNeedAGpuPerRank) {
  const auto error_of = [](const std::string& yaml) -> std::string {
    try {
      slurm_options_from_config(YAML::Load(yaml));
    } catch (const UserError& error) {
      return error.what();
    }
    return "";
  };
  EXPECT_EQ(error_of("trainer: {device: cuda}\nlauncher: {tasks_per_node: 4, gpus_per_node: 4}"),
            "");
  EXPECT_EQ(error_of("trainer: {device: cuda}\nlauncher: {tasks_per_node: 4, gpus_per_node: 2}"),
            "launcher.tasks_per_node=4 is more than launcher.gpus_per_node=2: with "
            "trainer.device=cuda each rank needs its own GPU");
  EXPECT_NE(error_of("trainer: {device: cuda}\nlauncher: {tasks_per_node: 1}")
                .find("launcher.gpus_per_node=0: the job would get no GPU"),
            std::string::npos);
  EXPECT_EQ(error_of("trainer: {device: cpu}\nlauncher: {tasks_per_node: 4}"), "");
}

// Runs the rendered script with SLURM_ARRAY_TASK_ID=task and a fake srun on PATH.
std::string run_with_fake_srun(const std::string& script, int task) {
  const fs::path dir = fs::temp_directory_path() / ("attnlab_sbatch_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "srun") << "#!/bin/bash\nfor a in \"$@\"; do printf '<%s>\\n' \"$a\"; done\n";
  fs::permissions(dir / "srun", fs::perms::owner_all);
  std::ofstream(dir / "job.sh") << script;
  auto result =
      testing::run_command("SLURM_ARRAY_TASK_ID=" + std::to_string(task) + " PATH=" + dir.string() +
                           ":$PATH bash " + (dir / "job.sh").string());
  fs::remove_all(dir);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return result.output;
}

TEST(SbatchScript, ArrayTasksGetTheirOwnOverridesVerbatim) {
  SlurmOptions options;
  options.array_parallelism(2);
  SlurmJobSpec spec;
  spec.workdir = "/tmp";
  spec.output = "/tmp/%a/slurm-%A_%a.out";
  spec.program = {"/opt/attnlab", "train"};
  spec.array_arguments = {{"name=it's", "seed=1", "run.dir=/s/0"},
                          {"data.text=a b $HOME `x` \"q\"", "seed=2", "run.dir=/s/1"},
                          {"optim.lr=0.3", "run.dir=/s/2"}};
  const std::string script = render_sbatch_script(options, spec);
  EXPECT_TRUE(contains_line(script, "#SBATCH --array=0-2%2")) << script;
  EXPECT_TRUE(contains_line(script, "#SBATCH --signal=USR1@120")) << script;

  const std::string task1 = run_with_fake_srun(script, 1);
  EXPECT_NE(task1.find("<--mpi=pmix>\n</opt/attnlab>\n<train>\n<data.text=a b $HOME `x` \"q\">\n"
                       "<seed=2>\n<run.dir=/s/1>\n"),
            std::string::npos)
      << task1;
  const std::string task0 = run_with_fake_srun(script, 0);
  EXPECT_NE(task0.find("<name=it's>\n<seed=1>\n<run.dir=/s/0>\n"), std::string::npos) << task0;
}

TEST(SbatchScript, ShellQuoteRoundTrips) {
  for (const std::string word : {"plain", "with space", "it's", "$(rm -rf x)", "", "a\"b"}) {
    auto result = testing::run_command("printf '%s' " + shell_quote(word));
    EXPECT_EQ(result.output, word);
  }
}

}  // namespace
}  // namespace attnlab
