// Per-layer options of a hybrid stack (config/group_lists.h, issue #18): a mapping entry of
// model.attention_per_layer is completed from the named attention option at composition time,
// takes the attention group's composed node when it names the run's module, and its keys are
// checked against that option's keys and types; bare names stay as they are.
#include "config/group_lists.h"

#include <yaml-cpp/yaml.h>

#include "config/yaml_io.h"
#include "config/yaml_tree.h"
#include "tests/support/config_test_util.h"

namespace attnlab::config {
namespace {
using testing::compose_in;
using testing::source_configs;
using testing::TempDir;

TEST(GroupLists, MappingEntriesAreCompletedFromTheNamedOption) {
  const YAML::Node c =
      compose_in(source_configs(), {"model.n_layers=4",
                                    "model.attention_per_layer=[mha, {name: moh, routed_k: 1}, "
                                    "{name: lssar, power: 3}, moh]"});
  const YAML::Node layers = c["model"]["attention_per_layer"];
  ASSERT_TRUE(layers.IsSequence());
  ASSERT_EQ(layers.size(), 4u);
  EXPECT_EQ(layers[0].Scalar(), "mha");  // bare names stay names
  EXPECT_EQ(layers[3].Scalar(), "moh");
  // Entry 1: every key of configs/attention/moh.yaml, routed_k replaced, in the file's order.
  const YAML::Node moh =
      load_config_file(std::string(ATTNLAB_SOURCE_DIR) + "/configs/attention/moh.yaml").content;
  ASSERT_EQ(layers[1].size(), moh.size());
  auto moh_key = moh.begin();
  for (auto it = layers[1].begin(); it != layers[1].end(); ++it, ++moh_key) {
    const std::string key = it->first.Scalar();
    EXPECT_EQ(key, moh_key->first.Scalar());
    if (key == "routed_k")
      EXPECT_EQ(it->second.as<int>(), 1);
    else
      EXPECT_EQ(YAML::Dump(it->second), YAML::Dump(moh_key->second)) << key;
  }
  EXPECT_EQ(layers[2]["power"].as<int>(), 3);
  EXPECT_EQ(layers[2]["free_rows"].as<int>(), 3);  // lssar.yaml's default
  // The group itself is untouched.
  EXPECT_EQ(c["attention"]["name"].Scalar(), "mha");
  EXPECT_FALSE(c["attention"]["power"].IsDefined());
}

TEST(GroupLists, AnEntryOfTheRunsModuleStartsFromTheComposedGroup) {
  const YAML::Node c = compose_in(
      source_configs(),
      {"attention=moh", "attention.router_init=trunc_normal", "model.n_layers=2",
       "model.attention_per_layer=[{name: moh, routed_k: 1}, {name: moh, balance_coef: 0}]"});
  const YAML::Node layers = c["model"]["attention_per_layer"];
  EXPECT_EQ(layers[0]["router_init"].Scalar(), "trunc_normal");  // the command line's override
  EXPECT_EQ(layers[0]["routed_k"].as<int>(), 1);
  EXPECT_TRUE(layers[0]["balance_coef"].as<double>() > 0);
  EXPECT_EQ(layers[1]["balance_coef"].Scalar(), "0.0");  // int -> float, as key=value does
  EXPECT_TRUE(layers[1]["routed_k"].IsNull());
  // Completing the entries copied the group; later changes to one do not reach the other.
  EXPECT_TRUE(c["attention"]["routed_k"].IsNull());
}

TEST(GroupLists, EntriesNameTheirKeyWhenRefused) {
  const std::vector<std::string> base = {"model.n_layers=2"};
  auto with = [&](const std::string& list) {
    std::vector<std::string> overrides = base;
    overrides.push_back("model.attention_per_layer=" + list);
    return overrides;
  };
  EXPECT_USER_ERROR(compose_in(source_configs(), with("[mha, {name: moh, routd_k: 1}]")),
                    "model.attention_per_layer[1].routd_k: attention 'moh' has no option "
                    "'routd_k'; its options: name, shared_heads, routed_k",
                    "(did you mean routed_k?)");
  EXPECT_USER_ERROR(compose_in(source_configs(), with("[{name: lssar, power: high}, mha]")),
                    "model.attention_per_layer[0].power: expected int like attention/lssar's "
                    "default '15', got string 'high'");
  EXPECT_USER_ERROR(compose_in(source_configs(), with("[mha, {name: mohh}]")),
                    "model.attention_per_layer[1].name: unknown attention 'mohh'; expected one of: "
                    "diff, gda, lssa, lssar, mha, moh",
                    "(did you mean moh?)");
  EXPECT_USER_ERROR(compose_in(source_configs(), with("[mha, {routed_k: 2}]")),
                    "model.attention_per_layer[1]: a mapping entry needs name: <attention>");
  // Bare names and the compact text are the model's to check (modules/gpt.cpp).
  EXPECT_NO_THROW(compose_in(source_configs(), with("'mha,moh'")));
  EXPECT_NO_THROW(compose_in(source_configs(), with("[mha, mohh]")));
}

// A user's own attention option (a config dir on ATTNLAB_CONFIG_PATH or --config-dir) is an
// option like the shipped ones: its keys are the ones an entry may set.
TEST(GroupLists, OptionsComeFromTheSearchPath) {
  TempDir d;
  d.write("config.yaml",
          "defaults:\n  - attention: plain\n  - _self_\nmodel:\n  attention_per_layer: null\n");
  d.write("attention/plain.yaml", "name: plain\nwidth: 4\n");
  d.write("attention/fancy.yaml", "defaults:\n  - _self_\nname: fancy\nsharpness: 1.5\n");
  const YAML::Node c = compose_in(
      d.path(), {"model.attention_per_layer=[{name: fancy, sharpness: 2}, {name: plain}]"});
  const YAML::Node layers = c["model"]["attention_per_layer"];
  EXPECT_EQ(layers[0]["sharpness"].as<double>(), 2.0);
  EXPECT_FALSE(layers[0]["defaults"].IsDefined()) << "a defaults list is not an option key";
  EXPECT_EQ(layers[1]["width"].as<int>(), 4);
  EXPECT_USER_ERROR(
      compose_in(d.path(), {"model.attention_per_layer=[{name: fancy, width: 2}]"}),
      "model.attention_per_layer[0].width: attention 'fancy' has no option 'width'; its options: "
      "name, sharpness");
}

}  // namespace
}  // namespace attnlab::config
