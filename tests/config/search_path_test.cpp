// Config search path: --config-dir / $ATTNLAB_CONFIG_DIR / ./configs / source tree precedence,
// extra dirs from $ATTNLAB_CONFIG_PATH (new groups and options; first match wins), discovery.
#include <unistd.h>

#include "tests/support/config_test_util.h"

namespace attnlab::config {
namespace {
using testing::ScopedEnv;
using testing::TempDir;

// Runs `body` with the working directory set to `dir`.
template <typename F>
void in_directory(const std::string& dir, F body) {
  std::string old = std::filesystem::current_path().string();
  std::filesystem::current_path(dir);
  try {
    body();
  } catch (...) {
    std::filesystem::current_path(old);
    throw;
  }
  std::filesystem::current_path(old);
}

TEST(SearchPath, Precedence) {
  ScopedEnv no_extra("ATTNLAB_CONFIG_PATH", std::nullopt);
  TempDir a, b, cwd;
  {
    ScopedEnv env("ATTNLAB_CONFIG_DIR", b.path());
    EXPECT_EQ(search_path(a.path()), std::vector<std::string>{a.path()});  // --config-dir first
    EXPECT_EQ(search_path(std::nullopt), std::vector<std::string>{b.path()});
  }
  ScopedEnv env("ATTNLAB_CONFIG_DIR", std::nullopt);
  in_directory(cwd.path(), [&] {
    EXPECT_EQ(search_path(std::nullopt),
              std::vector<std::string>{std::string(ATTNLAB_SOURCE_DIR) + "/configs"});
    cwd.write("configs/config.yaml", "x: 1\n");
    EXPECT_EQ(search_path(std::nullopt), std::vector<std::string>{"configs"});
  });
}

TEST(SearchPath, MissingDirectoriesAreErrors) {
  ScopedEnv no_extra("ATTNLAB_CONFIG_PATH", std::nullopt);
  EXPECT_USER_ERROR(search_path(std::string("/nonexistent/attnlab")), "--config-dir",
                    "/nonexistent/attnlab", "does not exist");
  ScopedEnv extra("ATTNLAB_CONFIG_PATH", std::string("/nonexistent/extra"));
  EXPECT_USER_ERROR(search_path(testing::source_configs()), "ATTNLAB_CONFIG_PATH",
                    "/nonexistent/extra");
}

TEST(SearchPath, ExtraDirsAddGroupsAndOptionsButFirstMatchWins) {
  TempDir primary, extra1, extra2;
  primary.write("config.yaml", "defaults:\n  - model: small\n  - _self_\n");
  primary.write("model/small.yaml", "width: 4\n");
  extra1.write("model/small.yaml", "width: 999\n");  // shadowed by the primary dir
  extra1.write("model/mine.yaml", "width: 77\n");
  extra2.write("tool/saw.yaml", "teeth: 40\n");
  extra2.write("model/mine.yaml", "width: 1\n");  // shadowed by extra1
  ScopedEnv env("ATTNLAB_CONFIG_PATH", extra1.path() + ":" + extra2.path());
  EXPECT_EQ(search_path(primary.path()),
            (std::vector<std::string>{primary.path(), extra1.path(), extra2.path()}));
  EXPECT_EQ(testing::compose_in(primary.path(), {})["model"]["width"].as<int>(), 4);
  EXPECT_EQ(testing::compose_in(primary.path(), {"model=mine"})["model"]["width"].as<int>(), 77);
  EXPECT_EQ(testing::compose_in(primary.path(), {"+tool=saw"})["tool"]["teeth"].as<int>(), 40);
  auto groups = discover_groups(search_path(primary.path()));
  EXPECT_EQ(groups.at("model"), (std::vector<std::string>{"mine", "small"}));
  EXPECT_EQ(groups.at("tool"), std::vector<std::string>{"saw"});
}

TEST(SearchPath, DiscoverShippedGroups) {
  auto groups = discover_groups({testing::source_configs()});
  for (std::string g : {"model", "attention", "loss", "data", "tokenizer", "optim", "scheduler",
                        "trainer", "launcher", "experiment"})
    EXPECT_TRUE(groups.count(g)) << g;
  auto& schedulers = groups.at("scheduler");
  for (std::string s : {"constant", "linear", "warmup_cosine", "wsd"})
    EXPECT_NE(std::find(schedulers.begin(), schedulers.end(), s), schedulers.end()) << s;
  EXPECT_FALSE(groups.count(""));
}

TEST(SearchPath, NestedGroupsAreDiscovered) {
  TempDir d;
  d.write("config.yaml", "a: 1\n");
  d.write("model/block/pre.yaml", "x: 1\n");
  d.write("model/notes.txt", "not yaml\n");
  auto groups = discover_groups({d.path()});
  EXPECT_EQ(groups.at("model/block"), std::vector<std::string>{"pre"});
  EXPECT_FALSE(groups.count("model"));
}

}  // namespace
}  // namespace attnlab::config
