// The launcher group as typed options (launch/launcher_options.h, launch/slurm_script.h): every
// registry entry's configs/launcher/<entry>.yaml names the entry and holds exactly its struct's
// defaults; the shipped configs bind to the values the files hold; a bad key, type or value is one
// UserError line naming the dotted key.
#include "launch/launcher_options.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <variant>
#include <vector>

#include "common/error.h"
#include "config/options.h"
#include "tests/support/train_runs.h"

namespace attnlab {
namespace {

// The message of the UserError that binding the launcher group of `yaml` throws ("" if none).
std::string launcher_error(const std::string& yaml) {
  try {
    launcher_options(YAML::Load(yaml));
  } catch (const UserError& error) {
    return error.what();
  }
  return "";
}

TEST(LauncherOptions, ShippedFilesHoldTheStructDefaults) {
  size_t compared = 0;
  for (const auto& name : launcher_registry().names()) {
    SCOPED_TRACE("configs/launcher/" + name + ".yaml");
    const YAML::Node file =
        YAML::LoadFile(std::string(ATTNLAB_SOURCE_DIR) + "/configs/launcher/" + name + ".yaml");
    EXPECT_EQ(file["name"].IsDefined() ? file["name"].as<std::string>() : "(no name)", name);
    const config::BindScope scope{"launcher '" + name + "'", {"name"}};
    const std::vector<std::string> differences = std::visit(
        [&](const auto& defaults) {
          using Options = std::decay_t<decltype(defaults)>;
          return config::differing_defaults<Options>(file, "launcher", scope);
        },
        launcher_registry().get(name).defaults);
    std::string lines;
    for (const auto& line : differences) lines += line + "\n";
    EXPECT_EQ(lines, "");
    ++compared;
  }
  EXPECT_EQ(compared, 2u);
}

TEST(LauncherOptions, ShippedConfigsBindToTheFilesValues) {
  const YAML::Node local = attnlab::testing::compose_shipped({"launcher.parallel=3"});
  const LauncherOptions bound = launcher_options(local);
  ASSERT_TRUE(std::holds_alternative<LocalLauncherOptions>(bound));
  EXPECT_EQ(std::get<LocalLauncherOptions>(bound).parallel(), 3);
  EXPECT_TRUE(std::get<LocalLauncherOptions>(bound).summarize());

  const YAML::Node slurm =
      attnlab::testing::compose_shipped({"launcher=slurm", "name=exp7", "launcher.mem=8G"});
  const LauncherOptions submitted = launcher_options(slurm);
  ASSERT_TRUE(std::holds_alternative<SlurmOptions>(submitted));
  const SlurmOptions& options = std::get<SlurmOptions>(submitted);
  EXPECT_EQ(options.job_name(), std::optional<std::string>("exp7"));  // null: the run's name
  EXPECT_EQ(options.mem(), std::optional<std::string>("8G"));
  EXPECT_EQ(options.partition(), std::nullopt);
  EXPECT_EQ(options.time(), "01:00:00");
  EXPECT_EQ(options.array_parallelism(), 16);
  EXPECT_EQ(options.mpi(), "pmix");
}

TEST(LauncherOptions, NoLauncherGroupRunsLocally) {
  const LauncherOptions bound = launcher_options(YAML::Load("seed: 1"));
  ASSERT_TRUE(std::holds_alternative<LocalLauncherOptions>(bound));
  EXPECT_EQ(std::get<LocalLauncherOptions>(bound).parallel(), 1);
}

TEST(LauncherOptions, BadKeysAndValuesNameTheDottedKey) {
  EXPECT_EQ(launcher_error("launcher: {name: local, parallel: 0}"),
            "launcher.parallel: expected a number >= 1, got 0");
  EXPECT_EQ(launcher_error("launcher: {name: local, summarize: maybe}"),
            "launcher.summarize: expected bool, got 'maybe'");
  // A key of the other launcher is an error, not a silently ignored setting.
  EXPECT_EQ(launcher_error("launcher: {name: local, nodes: 2}")
                .rfind("launcher.nodes: launcher 'local' has no option 'nodes'; its options: "
                       "parallel, summarize",
                       0),
            0u);
  EXPECT_EQ(launcher_error("launcher: {name: slurm, paralel: 2}")
                .rfind("launcher.paralel: launcher 'slurm' has no option 'paralel'", 0),
            0u);
  EXPECT_EQ(launcher_error("launcher: {name: slurm, nodes: 0}"),
            "launcher.nodes: expected a number >= 1, got 0");
  EXPECT_EQ(launcher_error("launcher: {name: slurm, cpus_per_task: many}"),
            "launcher.cpus_per_task: expected int, got 'many'");
  EXPECT_EQ(launcher_error("launcher: {name: slurm, signal_delay_s: -5}"),
            "launcher.signal_delay_s: expected a number >= 0, got -5");
  EXPECT_EQ(launcher_error("launcher: {name: slurm, time: ''}"),
            "launcher.time: expected a Slurm time like 01:00:00, got ''");
  EXPECT_NE(launcher_error("launcher: {name: pbs}").find("launcher (launcher.name) 'pbs'"),
            std::string::npos);
  for (const std::string yaml :
       {"launcher: {name: local, parallel: 0}", "launcher: {name: slurm, nodes: 0}"})
    EXPECT_EQ(launcher_error(yaml).find('\n'), std::string::npos) << yaml;
}

TEST(LauncherOptions, SubmittingNeedsTheSlurmLauncher) {
  try {
    slurm_options_from_config(YAML::Load("launcher: {name: local, parallel: 2}"));
    FAIL() << "launcher=local accepted for a Slurm submission";
  } catch (const UserError& error) {
    EXPECT_EQ(std::string(error.what()),
              "launcher.name: submitting to Slurm needs launcher=slurm, got 'local'");
  }
}

}  // namespace
}  // namespace attnlab
