// Run directories: the files written, a resume that keeps everything else, git state recording
// for a dirty checkout and for a directory that is not a checkout.
#include "config/run_directory.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "config/yaml_io.h"
#include "tests/support/config_test_util.h"

namespace attnlab::config {
namespace {
using testing::TempDir;

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

YAML::Node config_for(const std::string& run_dir) {
  YAML::Node c = parse_yaml("name: x\nseed: 3\ntag: '007'\nrun: {dir: placeholder}\n", "test");
  c["run"]["dir"] = run_dir;
  return c;
}

TEST(RunDirectory, WritesConfigOverridesCommandAndResumes) {
  TempDir scratch, not_git;
  std::string dir = scratch.path() + "/runs/x/1";
  YAML::Node config = config_for(dir);
  RunDirectory run = prepare_run_directory(
      config, {"seed=3", "name=a b"}, {"attnlab", "train", "seed=3", "name=a b"}, not_git.path());
  EXPECT_EQ(run.path, dir);
  EXPECT_FALSE(run.existed);
  YAML::Node saved = YAML::LoadFile(dir + "/config.yaml");
  EXPECT_EQ(saved["seed"].as<int>(), 3);
  EXPECT_EQ(saved["tag"].as<std::string>(), "007");
  EXPECT_EQ(saved["tag"].Tag(), "!");  // stays a quoted string across the round trip
  YAML::Node overrides = YAML::LoadFile(dir + "/overrides.yaml");
  ASSERT_EQ(overrides.size(), 2u);
  EXPECT_EQ(overrides[1].as<std::string>(), "name=a b");
  EXPECT_EQ(read(dir + "/command.txt"), "attnlab train seed=3 'name=a b'\n");
  EXPECT_NE(read(dir + "/git.txt").find("not a git checkout"), std::string::npos);

  std::ofstream(dir + "/checkpoint.bin") << "weights";
  config["seed"] = 4;
  RunDirectory again = prepare_run_directory(config, {}, {"attnlab", "train"}, not_git.path());
  EXPECT_TRUE(again.existed);
  EXPECT_EQ(read(dir + "/checkpoint.bin"), "weights");
  EXPECT_EQ(YAML::LoadFile(dir + "/config.yaml")["seed"].as<int>(), 4);
  EXPECT_EQ(read(dir + "/overrides.yaml"), "[]\n");
}

TEST(RunDirectory, RecordsGitCommitStatusAndDiff) {
  if (std::system("git --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "git not installed";
  TempDir repo, scratch;
  std::string git = "git -C " + repo.path() + " -c user.name=t -c user.email=t@t ";
  repo.write("a.txt", "one\n");
  ASSERT_EQ(std::system(
                (git + "init -q && " + git + "add a.txt && " + git + "commit -q -m init").c_str()),
            0);
  std::string dir = scratch.path() + "/run";
  prepare_run_directory(config_for(dir), {}, {"attnlab"}, repo.path());
  std::string clean = read(dir + "/git.txt");
  EXPECT_NE(clean.find("commit: "), std::string::npos);
  EXPECT_NE(clean.find("dirty: false"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir + "/git.diff"));

  repo.write("a.txt", "two\n");
  repo.write("new.txt", "untracked\n");
  prepare_run_directory(config_for(dir), {}, {"attnlab"}, repo.path());
  std::string dirty = read(dir + "/git.txt");
  EXPECT_NE(dirty.find("dirty: true"), std::string::npos);
  EXPECT_NE(dirty.find(" M a.txt"), std::string::npos);
  EXPECT_NE(dirty.find("?? new.txt"), std::string::npos);
  std::string diff = read(dir + "/git.diff");
  EXPECT_NE(diff.find("-one"), std::string::npos);
  EXPECT_NE(diff.find("+two"), std::string::npos);
}

TEST(RunDirectory, RequiresAResolvedRunDir) {
  YAML::Node c = parse_yaml("run: {dir: 'runs/${name}'}\nname: x\n", "test");
  EXPECT_USER_ERROR(prepare_run_directory(c, {}, {}), "not resolved");
  EXPECT_USER_ERROR(prepare_run_directory(parse_yaml("a: 1\n", "t"), {}, {}), "run.dir");
}

TEST(RunDirectory, ShellJoinQuotes) {
  EXPECT_EQ(shell_join({"attnlab", "config", "a=[1,2]", "it's", ""}),
            "attnlab config 'a=[1,2]' 'it'\\''s' ''");
}

}  // namespace
}  // namespace attnlab::config
