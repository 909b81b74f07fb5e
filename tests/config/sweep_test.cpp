// Multirun expansion: comma lists, range() over ints and floats, choice(), zip() (paired axes),
// glob() over a group's options, the cartesian product's order, and per-job composition.
#include <yaml-cpp/yaml.h>

#include "config/run_directory.h"
#include "tests/support/config_test_util.h"

namespace attnlab::config {
namespace {
using testing::TempDir;

std::vector<std::vector<std::string>> jobs_of(const std::string& dir,
                                              const std::vector<std::string>& overrides) {
  ComposeRequest request;
  request.config_dir = dir;
  request.overrides = overrides;
  std::vector<std::vector<std::string>> out;
  auto jobs = expand_sweep(request);
  for (size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_EQ(jobs[i].index, static_cast<int>(i));
    out.push_back(jobs[i].overrides);
  }
  return out;
}

void write_tree(const TempDir& d) {
  d.write("config.yaml", "defaults:\n  - attention: mha\n  - _self_\nseed: 0\nlr: 0.1\n");
  for (std::string option : {"mha", "moh", "softplus", "gda"})
    d.write("attention/" + option + ".yaml", "name: " + option + "\n");
}

TEST(Sweep, CartesianProductFirstVariesSlowest) {
  TempDir d;
  write_tree(d);
  auto jobs = jobs_of(d.path(), {"seed=1,2", "lr=0.1,0.2,0.3", "+tag=x"});
  ASSERT_EQ(jobs.size(), 6u);
  EXPECT_EQ(jobs[0], (std::vector<std::string>{"seed=1", "lr=0.1", "+tag=x"}));
  EXPECT_EQ(jobs[1], (std::vector<std::string>{"seed=1", "lr=0.2", "+tag=x"}));
  EXPECT_EQ(jobs[3], (std::vector<std::string>{"seed=2", "lr=0.1", "+tag=x"}));
  EXPECT_EQ(jobs[5], (std::vector<std::string>{"seed=2", "lr=0.3", "+tag=x"}));
}

TEST(Sweep, NoSweepIsOneJob) {
  TempDir d;
  write_tree(d);
  auto jobs = jobs_of(d.path(), {"seed=3"});
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0], (std::vector<std::string>{"seed=3"}));
}

TEST(Sweep, RangeIntsAndFloats) {
  TempDir d;
  write_tree(d);
  auto ints = jobs_of(d.path(), {"seed=range(0,10,3)"});
  ASSERT_EQ(ints.size(), 4u);  // 0 3 6 9, like Python's range
  EXPECT_EQ(ints[3][0], "seed=9");
  EXPECT_EQ(jobs_of(d.path(), {"seed=range(3)"}).size(), 3u);
  EXPECT_EQ(jobs_of(d.path(), {"seed=range(5,0,-2)"})[2][0], "seed=1");
  auto floats = jobs_of(d.path(), {"lr=range(0.1,0.4,0.1)"});
  ASSERT_EQ(floats.size(), 3u);
  EXPECT_EQ(floats[0][0], "lr=0.1");
  EXPECT_EQ(floats[2][0], "lr=0.3");
  auto mixed = jobs_of(d.path(), {"lr=range(0,1,0.5)"});
  ASSERT_EQ(mixed.size(), 2u);
  EXPECT_EQ(mixed[0][0], "lr=0.0");
  EXPECT_USER_ERROR(jobs_of(d.path(), {"seed=range(0,3,0)"}), "non-zero step");
  EXPECT_USER_ERROR(jobs_of(d.path(), {"seed=range(3,0)"}), "empty");
  EXPECT_USER_ERROR(jobs_of(d.path(), {"seed=range(a,3)"}), "takes numbers");
}

TEST(Sweep, ChoiceAndQuotedItems) {
  TempDir d;
  write_tree(d);
  auto jobs = jobs_of(d.path(), {"+note=choice(a, 'b,c')"});
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[1][0], "+note='b,c'");
  auto lists = jobs_of(d.path(), {"+l=[1,2],[3]"});
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[0][0], "+l=[1,2]");
}

TEST(Sweep, ZipPairsValuesByPositionAsOneAxis) {
  TempDir d;
  write_tree(d);
  // attention and lr change together (paired), seeds multiply: 2 x 2 jobs, not 2 x 2 x 2.
  auto jobs = jobs_of(d.path(), {"attention=zip(mha,gda)", "seed=1,2", "lr=zip(0.1,0.3)"});
  ASSERT_EQ(jobs.size(), 4u);
  EXPECT_EQ(jobs[0], (std::vector<std::string>{"attention=mha", "lr=0.1", "seed=1"}));
  EXPECT_EQ(jobs[1], (std::vector<std::string>{"attention=mha", "lr=0.1", "seed=2"}));
  EXPECT_EQ(jobs[2], (std::vector<std::string>{"attention=gda", "lr=0.3", "seed=1"}));
  EXPECT_EQ(jobs[3], (std::vector<std::string>{"attention=gda", "lr=0.3", "seed=2"}));
  // One zip() alone is a plain list.
  EXPECT_EQ(jobs_of(d.path(), {"lr=zip(0.1,0.2,0.3)"}).size(), 3u);
  EXPECT_USER_ERROR(jobs_of(d.path(), {"attention=zip(mha,gda)", "lr=zip(0.1,0.2,0.3)"}),
                    "'attention=zip(mha,gda)' has 2, 'lr=zip(0.1,0.2,0.3)' has 3");
  EXPECT_USER_ERROR(jobs_of(d.path(), {"lr=[zip(1,2)]"}), "must be the whole value");
}

TEST(Sweep, ASweepBlockInTheConfigAddsAxesTheCommandLineDoesNotName) {
  TempDir d;
  d.write("config.yaml",
          "defaults:\n  - attention: mha\n  - _self_\nseed: 0\nlr: 0.1\n"
          "sweep: {seed: \"1,2\", lr: \"zip(0.1,0.2)\", attention: \"zip(mha,gda)\"}\n");
  for (std::string option : {"mha", "gda"})
    d.write("attention/" + option + ".yaml", "name: " + option + "\n");
  auto jobs = jobs_of(d.path(), {"+tag=x"});
  ASSERT_EQ(jobs.size(), 4u);
  EXPECT_EQ(jobs[0], (std::vector<std::string>{"+tag=x", "seed=1", "lr=0.1", "attention=mha"}));
  EXPECT_EQ(jobs[3], (std::vector<std::string>{"+tag=x", "seed=2", "lr=0.2", "attention=gda"}));
  // A key on the command line keeps its value (set or swept there).
  auto fixed_seed = jobs_of(d.path(), {"seed=7"});
  ASSERT_EQ(fixed_seed.size(), 2u);
  EXPECT_EQ(fixed_seed[1], (std::vector<std::string>{"seed=7", "lr=0.2", "attention=gda"}));

  // The shipped one-file ablation: 3 attentions x 3 seeds.
  auto shipped = jobs_of(testing::source_configs(), {"experiment=attention_ablation"});
  ASSERT_EQ(shipped.size(), 9u);
  EXPECT_EQ(shipped[0],
            (std::vector<std::string>{"experiment=attention_ablation", "attention=mha", "seed=1"}));
  EXPECT_EQ(shipped[8],
            (std::vector<std::string>{"experiment=attention_ablation", "attention=gda", "seed=3"}));
  EXPECT_EQ(jobs_of(testing::source_configs(), {"experiment=attention_ablation", "seed=1"}).size(),
            3u);

  d.write("config.yaml", "seed: 0\nsweep: {seed: [1, 2]}\n");
  EXPECT_USER_ERROR(jobs_of(d.path(), {}), "expected the values as one string");
}

TEST(Sweep, GlobOverGroupOptions) {
  TempDir d;
  write_tree(d);
  auto all = jobs_of(d.path(), {"attention=glob(*)"});
  ASSERT_EQ(all.size(), 4u);  // sorted option names
  EXPECT_EQ(all[0][0], "attention=gda");
  EXPECT_EQ(all[3][0], "attention=softplus");
  auto m = jobs_of(d.path(), {"attention=glob(m*)", "seed=1,2"});
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0], (std::vector<std::string>{"attention=mha", "seed=1"}));
  EXPECT_EQ(m[2], (std::vector<std::string>{"attention=moh", "seed=1"}));
  EXPECT_EQ(jobs_of(d.path(), {"attention=glob(*,exclude=m*)"}).size(), 2u);
  EXPECT_USER_ERROR(jobs_of(d.path(), {"attention=glob(x*)"}), "matches no option",
                    "gda, mha, moh, softplus");
  EXPECT_USER_ERROR(jobs_of(d.path(), {"seed=glob(*)"}), "not one");
}

TEST(Sweep, EveryJobComposesWithItsOwnRunDir) {
  TempDir d;
  write_tree(d);
  d.write("config.yaml",
          "defaults:\n  - attention: mha\n  - _self_\nseed: 0\nrun:\n  dir: single\n"
          "  sweep_dir: sweeps/${now:%Y}\n");
  ComposeRequest request;
  request.config_dir = d.path();
  request.overrides = {"attention=glob(m*)", "seed=5"};
  auto jobs = expand_sweep(request);
  ASSERT_EQ(jobs.size(), 2u);
  YAML::Node second = compose_sweep_job(request, jobs[1]);
  EXPECT_EQ(second["attention"]["name"].as<std::string>(), "moh");
  EXPECT_EQ(second["seed"].as<int>(), 5);
  EXPECT_EQ(second["run"]["dir"].as<std::string>(), "sweeps/" + now_string("%Y") + "/1");
  EXPECT_EQ(multirun_job_dir(second, 1), "sweeps/" + now_string("%Y") + "/1");
}

TEST(Sweep, DefaultMultirunDirOfShippedConfig) {
  ComposeRequest request;
  request.config_dir = testing::source_configs();
  SweepJob job{3, {"seed=1"}};
  YAML::Node c = compose_sweep_job(request, job);
  EXPECT_EQ(c["run"]["dir"].as<std::string>(),
            "runs/multirun/" + now_string("%Y-%m-%d_%H-%M-%S") + "/3");
}

}  // namespace
}  // namespace attnlab::config
