// The run's own top-level keys as typed options (config/run_options.h): configs/config.yaml and
// the struct hold the same defaults, a bad value is one line naming the key, and binding the run's
// part of a whole config leaves the groups' keys alone (config::bind_part).
#include "config/run_options.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>

#include "common/error.h"
#include "config/options.h"
#include "config/yaml_io.h"

namespace attnlab {
namespace {

std::string error_of(const std::string& yaml) {
  try {
    run_options(YAML::Load(yaml));
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(RunOptions, ShippedConfigHoldsTheStructDefaults) {
  const YAML::Node shipped =
      config::load_config_file(std::string(ATTNLAB_SOURCE_DIR) + "/configs/config.yaml").content;
  const RunOptions from_file = run_options(shipped);
  const RunOptions defaults;
  EXPECT_EQ(from_file.name, defaults.name);
  EXPECT_EQ(from_file.seed, defaults.seed);
  EXPECT_EQ(from_file.run.dir, defaults.run.dir);
  EXPECT_EQ(from_file.run.sweep_dir, defaults.run.sweep_dir);
  EXPECT_EQ(from_file.run.resume, defaults.run.resume);
  EXPECT_EQ(from_file.init_from, defaults.init_from);
  EXPECT_EQ(from_file.init_strict, defaults.init_strict);
  // The file sets every key the struct declares (a key left out would hide a drifted default).
  for (const char* key : {"name", "seed", "run", "init_from", "init_strict"})
    EXPECT_TRUE(shipped[key].IsDefined()) << key;
}

TEST(RunOptions, BindsOnlyTheRunsKeysOfAWholeConfig) {
  const RunOptions options = run_options(YAML::Load(
      "seed: 7\ninit_from: runs/a\nrun: {resume: never}\nmodel: {d_model: 64}\noptim: {lr: 1}"));
  EXPECT_EQ(options.seed, 7);
  EXPECT_EQ(options.init_from.value_or(""), "runs/a");
  EXPECT_EQ(options.run.resume, "never");
  EXPECT_EQ(options.run.dir, RunOptions().run.dir);  // left out: the default
  EXPECT_FALSE(run_options(YAML::Load("init_from: null")).init_from.has_value());
}

TEST(RunOptions, ABadValueIsOneLineNamingTheKey) {
  EXPECT_NE(error_of("seed: abc").find("seed: expected int"), std::string::npos)
      << error_of("seed: abc");
  EXPECT_NE(error_of("run: {resume: maybe}").find("run.resume"), std::string::npos)
      << error_of("run: {resume: maybe}");
  EXPECT_NE(error_of("run: {resum: auto}").find("run.resum"), std::string::npos);
  EXPECT_NE(error_of("init_strict: sometimes").find("init_strict"), std::string::npos);
  EXPECT_NE(error_of("run: 3").find("run"), std::string::npos);
}

}  // namespace
}  // namespace attnlab
