// Composition: the shipped default tree, defaults lists (_self_ order, optional, override,
// nested defaults, packages) and group choices from the command line.
#include <yaml-cpp/yaml.h>

#include "config/yaml_tree.h"
#include "tests/support/config_test_util.h"

namespace attnlab::config {
namespace {
using testing::compose_in;
using testing::source_configs;
using testing::TempDir;

TEST(Compose, ShippedDefaultTreeHasTheFixedNamesAndTypes) {
  testing::ScopedEnv env("ATTNLAB_DATA", std::nullopt);
  YAML::Node c = compose_in(source_configs(), {});
  EXPECT_EQ(c["name"].as<std::string>(), "default");
  EXPECT_EQ(c["seed"].as<int64_t>(), 1337);
  EXPECT_EQ(c["model"]["d_model"].as<int64_t>(), 128);
  EXPECT_DOUBLE_EQ(c["model"]["norm_eps"].as<double>(), 1e-5);
  EXPECT_DOUBLE_EQ(c["optim"]["lr"].as<double>(), 1e-3);
  EXPECT_EQ(c["attention"]["name"].as<std::string>(), "mha");
  EXPECT_TRUE(c["attention"]["rope"].as<bool>());
  EXPECT_EQ(c["loss"]["terms"][0]["name"].as<std::string>(), "cross_entropy");
  EXPECT_EQ(c["trainer"]["max_steps"].as<int64_t>(), 1200);
  EXPECT_TRUE(c["data"]["cache_dir"].IsNull());  // $XDG_CACHE_HOME/attnlab or ~/.cache/attnlab
  EXPECT_TRUE(c["init_from"].IsNull());
  EXPECT_EQ(c["run"]["resume"].as<std::string>(), "auto");
  EXPECT_EQ(c["run"]["dir"].as<std::string>().rfind("runs/default/", 0), 0u);
  EXPECT_FALSE(c["defaults"].IsDefined());
}

TEST(Compose, ShippedExperimentOverridesSizesAndScheduler) {
  YAML::Node c = compose_in(source_configs(), {"experiment=tiny"});
  EXPECT_EQ(c["name"].as<std::string>(), "tiny");
  EXPECT_EQ(c["model"]["d_model"].as<int64_t>(), 64);
  EXPECT_EQ(c["model"]["n_heads"].as<int64_t>(), 2);
  EXPECT_EQ(c["model"]["mlp"].as<std::string>(), "gelu");  // untouched keys survive the merge
  EXPECT_EQ(c["trainer"]["max_steps"].as<int64_t>(), 50);
  EXPECT_EQ(c["scheduler"]["name"].as<std::string>(), "constant");  // `override /scheduler`
  EXPECT_EQ(c["run"]["dir"].as<std::string>().rfind("runs/tiny/", 0), 0u);
  // +experiment=tiny fills the `experiment: null` entry too.
  EXPECT_EQ(compose_in(source_configs(), {"+experiment=tiny"})["name"].as<std::string>(), "tiny");
}

// A small tree used by most tests below.
void write_tree(const TempDir& d) {
  d.write("config.yaml",
          "defaults:\n  - model: small\n  - optional extra: x\n  - _self_\n  - exp: null\n"
          "name: base\nmodel:\n  width: 8\n");
  d.write("model/small.yaml", "width: 4\ndepth: 2\n");
  d.write("model/big.yaml", "width: 64\ndepth: 12\n");
  d.write("exp/wide.yaml",
          "# @package _global_\ndefaults:\n  - override /model: big\nname: wide\nmodel:\n"
          "  depth: 3\n");
}

TEST(Compose, SelfAfterGroupsWinsAndOptionalMissingIsSkipped) {
  TempDir d;
  write_tree(d);
  YAML::Node c = compose_in(d.path(), {});
  EXPECT_EQ(c["model"]["width"].as<int>(), 8);  // primary's _self_ comes after model
  EXPECT_EQ(c["model"]["depth"].as<int>(), 2);
  EXPECT_FALSE(c["extra"].IsDefined());  // optional extra: x has no file
}

TEST(Compose, SelfFirstLetsGroupsWin) {
  TempDir d;
  d.write("config.yaml", "defaults:\n  - _self_\n  - model: small\nmodel:\n  width: 8\n");
  d.write("model/small.yaml", "width: 4\n");
  EXPECT_EQ(compose_in(d.path(), {})["model"]["width"].as<int>(), 4);
}

TEST(Compose, MissingSelfMeansSelfLast) {
  TempDir d;
  d.write("config.yaml", "defaults:\n  - model: small\nmodel:\n  width: 8\n");
  d.write("model/small.yaml", "width: 4\n");
  EXPECT_EQ(compose_in(d.path(), {})["model"]["width"].as<int>(), 8);
}

TEST(Compose, OptionalEntryLoadsWhenPresent) {
  TempDir d;
  write_tree(d);
  d.write("extra/x.yaml", "flag: true\n");
  EXPECT_TRUE(compose_in(d.path(), {})["extra"]["flag"].as<bool>());
}

TEST(Compose, GlobalExperimentWithOverrideEntry) {
  TempDir d;
  write_tree(d);
  YAML::Node c = compose_in(d.path(), {"exp=wide"});
  EXPECT_EQ(c["name"].as<std::string>(), "wide");
  EXPECT_EQ(c["model"]["width"].as<int>(), 8);  // primary _self_ still after model
  EXPECT_EQ(c["model"]["depth"].as<int>(), 3);  // experiment comes last
}

// Struct mode for experiment files: a key the config does not have is an error naming the file and
// the key (with the closest existing key), not a new key nothing reads. Free-form mappings (empty
// in the config) and values replaced whole still take anything.
TEST(Compose, ExperimentFileWithAnUnknownKeyIsAnErrorNamingFileAndKey) {
  TempDir d;
  d.write("config.yaml",
          "defaults:\n  - _self_\n  - experiment: null\n"
          "trainer: {max_steps: 5, eval_every: 1}\nlr_multipliers: {}\nfreeze: []\n");
  d.write("experiment/typo.yaml", "# @package _global_\ntrainer:\n  max_stepz: 10\n");
  d.write("experiment/good.yaml",
          "# @package _global_\ntrainer: {max_steps: 10}\nlr_multipliers: {embed: 0.1}\n"
          "freeze: [embed]\n");
  d.write("experiment/new_top.yaml", "# @package _global_\nnotes: hello\n");
  try {
    compose_in(d.path(), {"experiment=typo"});
    FAIL() << "an unknown key in an experiment file composed";
  } catch (const UserError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("typo.yaml: key 'trainer.max_stepz' is not in the config"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("did you mean max_steps?"), std::string::npos) << message;
  }
  EXPECT_THROW(compose_in(d.path(), {"experiment=new_top"}), UserError);
  YAML::Node good = compose_in(d.path(), {"experiment=good"});
  EXPECT_EQ(good["trainer"]["max_steps"].as<int>(), 10);
  EXPECT_EQ(good["lr_multipliers"]["embed"].as<double>(), 0.1);
  EXPECT_FALSE(good["trainer"]["max_stepz"].IsDefined());
}

TEST(Compose, CommandLineGroupChoiceBeatsOverrideEntry) {
  TempDir d;
  d.write("config.yaml", "defaults:\n  - model: small\n  - exp: null\n");
  d.write("model/small.yaml", "width: 4\n");
  d.write("model/big.yaml", "width: 64\n");
  d.write("model/huge.yaml", "width: 512\n");
  d.write("exp/e.yaml", "# @package _global_\ndefaults:\n  - override /model: big\n");
  EXPECT_EQ(compose_in(d.path(), {"exp=e"})["model"]["width"].as<int>(), 64);
  EXPECT_EQ(compose_in(d.path(), {"exp=e", "model=huge"})["model"]["width"].as<int>(), 512);
}

TEST(Compose, GroupNullRemovesAndPlusAppends) {
  TempDir d;
  write_tree(d);
  d.write("extra/x.yaml", "flag: true\n");
  d.write("tool/hammer.yaml", "weight: 3\n");
  YAML::Node c = compose_in(d.path(), {"extra=null", "+tool=hammer"});
  EXPECT_FALSE(c["extra"].IsDefined());
  EXPECT_EQ(c["tool"]["weight"].as<int>(), 3);
  EXPECT_EQ(compose_in(d.path(), {"++tool=hammer"})["tool"]["weight"].as<int>(), 3);
  EXPECT_EQ(compose_in(d.path(), {"++model=big"})["model"]["depth"].as<int>(), 12);
}

TEST(Compose, DeleteGroupWithAndWithoutValue) {
  TempDir d;
  write_tree(d);
  EXPECT_EQ(compose_in(d.path(), {"~model"})["model"]["depth"].IsDefined(), false);
  EXPECT_EQ(compose_in(d.path(), {"~model=small"})["model"]["width"].as<int>(), 8);
  EXPECT_USER_ERROR(compose_in(d.path(), {"~model=big"}), "'model'", "small", "big");
}

TEST(Compose, GroupErrors) {
  TempDir d;
  write_tree(d);
  d.write("tool/hammer.yaml", "weight: 3\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {"model=bigg"}), "unknown option 'bigg'",
                    "config group 'model'", "available: big, small", "did you mean big?");
  EXPECT_USER_ERROR(compose_in(d.path(), {"tool=hammer"}), "not in the defaults list",
                    "+tool=hammer");
  EXPECT_USER_ERROR(compose_in(d.path(), {"+model=big"}), "already in the defaults list",
                    "model=big");
  EXPECT_USER_ERROR(compose_in(d.path(), {"model=[a,b]"}), "must be a name or null");
}

TEST(Compose, NestedDefaultsAreRelativeToTheGroup) {
  TempDir d;
  d.write("config.yaml", "defaults:\n  - model: gpt\n");
  d.write("model/gpt.yaml", "defaults:\n  - block: pre\n  - _self_\nwidth: 4\n");
  d.write("model/block/pre.yaml", "norm: pre\n");
  d.write("model/block/post.yaml", "norm: post\n");
  YAML::Node c = compose_in(d.path(), {});
  EXPECT_EQ(c["model"]["block"]["norm"].as<std::string>(), "pre");
  EXPECT_EQ(c["model"]["width"].as<int>(), 4);
  EXPECT_EQ(compose_in(d.path(), {"model/block=post"})["model"]["block"]["norm"].as<std::string>(),
            "post");
}

TEST(Compose, PackageHeaderAndEntryPackage) {
  TempDir d;
  d.write("config.yaml", "defaults:\n  - opt: a\n  - opt@backup: b\n  - lone: c\n");
  d.write("opt/a.yaml", "# @package optimizer.main\nlr: 1\n");
  d.write("opt/b.yaml", "lr: 2\n");
  d.write("lone/c.yaml", "# @package _group_\nk: v\n");
  YAML::Node c = compose_in(d.path(), {});
  EXPECT_EQ(c["optimizer"]["main"]["lr"].as<int>(), 1);
  EXPECT_EQ(c["backup"]["lr"].as<int>(), 2);
  EXPECT_EQ(c["lone"]["k"].as<std::string>(), "v");
  EXPECT_FALSE(c["opt"].IsDefined());
  EXPECT_EQ(compose_in(d.path(), {"opt@backup=a"})["backup"]["lr"].as<int>(), 1);
  EXPECT_EQ(compose_in(d.path(), {"opt=b"})["optimizer"].IsDefined(), false);
}

TEST(Compose, PlainConfigEntryMergesIntoSamePackage) {
  TempDir d;
  d.write("config.yaml", "defaults:\n  - base\n  - _self_\na: 2\n");
  d.write("base.yaml", "a: 1\nb: 1\n");
  YAML::Node c = compose_in(d.path(), {});
  EXPECT_EQ(c["a"].as<int>(), 2);
  EXPECT_EQ(c["b"].as<int>(), 1);
}

TEST(Compose, DefaultsListErrorsNameTheFile) {
  TempDir d;
  d.write("config.yaml", "defaults:\n  - model: small\n  - model: big\n");
  d.write("model/small.yaml", "w: 1\n");
  d.write("model/big.yaml", "w: 2\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "appears twice");
  d.write("config.yaml", "defaults:\n  - modl: small\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "config.yaml:2:5", "unknown config group 'modl'",
                    "did you mean model?");
  d.write("config.yaml", "defaults: {model: small}\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "'defaults' must be a list");
  d.write("config.yaml", "defaults:\n  - model: [small, big]\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "lists of options are not supported");
  d.write("config.yaml", "defaults:\n  - override model: big\n  - model: small\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "comes after config group 'model' was chosen");
  d.write("config.yaml", "defaults:\n  - model: small\n  - override /nothing: x\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "matches no config group");
  d.write("config.yaml", "defaults:\n  - self_loop\n");
  d.write("self_loop.yaml", "defaults:\n  - self_loop\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}),
                    "self_loop.yaml: a defaults list includes this config", "self_loop.yaml -> ");
}

TEST(Compose, ChoicesAreReported) {
  TempDir d;
  write_tree(d);
  ComposeRequest request;
  request.config_dir = d.path();
  request.overrides = {"model=big"};
  Composition c = compose_with_choices(request);
  EXPECT_EQ(c.choices.at("model"), "big");
  EXPECT_EQ(c.choices.at("exp"), "null");
}

TEST(Compose, MissingPrimaryConfig) {
  TempDir d;
  d.write("model/a.yaml", "x: 1\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "primary config 'config.yaml' not found");
}

}  // namespace
}  // namespace attnlab::config
