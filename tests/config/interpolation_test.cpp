// Interpolation: absolute/relative references, type keeping, string building, resolvers, and
// the cycle / dangling-reference errors.
#include "config/interpolation.h"

#include <yaml-cpp/yaml.h>

#include "config/yaml_io.h"
#include "config/yaml_tree.h"
#include "tests/support/config_test_util.h"

namespace attnlab::config {
namespace {

YAML::Node resolve_text(const std::string& yaml) {
  return resolve_interpolations(parse_yaml(yaml, "test"));
}

TEST(Interpolation, WholeValueKeepsType) {
  YAML::Node c = resolve_text(
      "a: {b: 4, f: 0.5, l: [1, 2], m: {x: y}, t: true}\n"
      "i: ${a.b}\nf: ${a.f}\nl: ${a.l}\nm: ${a.m}\nt: ${a.t}\n");
  EXPECT_EQ(value_kind(c["i"]), ValueKind::kInt);
  EXPECT_EQ(c["i"].as<int>(), 4);
  EXPECT_EQ(value_kind(c["f"]), ValueKind::kFloat);
  EXPECT_EQ(c["l"][1].as<int>(), 2);
  EXPECT_EQ(c["m"]["x"].as<std::string>(), "y");
  EXPECT_TRUE(c["t"].as<bool>());
}

TEST(Interpolation, InsideStringsAndChains) {
  YAML::Node c = resolve_text(
      "name: exp\nn: 3\nrun: {dir: 'runs/${name}/n${n}', copy: '${run.dir}'}\nlist: ['${n}', "
      "'${name}-x']\n");
  EXPECT_EQ(c["run"]["dir"].as<std::string>(), "runs/exp/n3");
  EXPECT_EQ(c["run"]["copy"].as<std::string>(), "runs/exp/n3");
  EXPECT_EQ(c["list"][0].as<int>(), 3);
  EXPECT_EQ(c["list"][1].as<std::string>(), "exp-x");
  EXPECT_EQ(value_kind(resolve_text("a: 1\nb: x${a}\n")["b"]), ValueKind::kString);
}

TEST(Interpolation, RelativeAndListIndex) {
  YAML::Node c =
      resolve_text("m:\n  w: 8\n  h: ${.w}\n  deep:\n    v: ${..w}\nl: [5, 6]\nx: ${l.1}\n");
  EXPECT_EQ(c["m"]["h"].as<int>(), 8);
  EXPECT_EQ(c["m"]["deep"]["v"].as<int>(), 8);
  EXPECT_EQ(c["x"].as<int>(), 6);
}

TEST(Interpolation, EnvResolver) {
  testing::ScopedEnv set("ATTNLAB_TEST_VAR", std::string("17"));
  testing::ScopedEnv unset("ATTNLAB_TEST_UNSET", std::nullopt);
  YAML::Node c = resolve_text(
      "a: ${oc.env:ATTNLAB_TEST_VAR}\nb: ${oc.env:ATTNLAB_TEST_UNSET,fallback}\n"
      "c: ${oc.env:ATTNLAB_TEST_UNSET,null}\nd: p/${oc.env:ATTNLAB_TEST_VAR,0}/q\n"
      "name: n\ne: ${oc.env:ATTNLAB_TEST_UNSET,${name}}\n");
  EXPECT_EQ(c["a"].as<int>(), 17);
  EXPECT_EQ(c["b"].as<std::string>(), "fallback");
  EXPECT_TRUE(c["c"].IsNull());
  EXPECT_EQ(c["d"].as<std::string>(), "p/17/q");
  EXPECT_EQ(c["e"].as<std::string>(), "n");
  EXPECT_USER_ERROR(resolve_text("a: ${oc.env:ATTNLAB_TEST_UNSET}\n"), "'a'", "ATTNLAB_TEST_UNSET",
                    "not set");
}

TEST(Interpolation, NowResolverIsStableAndFormatted) {
  YAML::Node c =
      resolve_text("a: ${now:%Y}\nb: ${now:%Y-%m-%d_%H-%M-%S}\nc: ${now:%Y-%m-%d_%H-%M-%S}\n");
  std::string year = c["a"].as<std::string>();
  ASSERT_EQ(year.size(), 4u);
  EXPECT_EQ(c["b"].as<std::string>().substr(0, 4), year);
  EXPECT_EQ(c["b"].as<std::string>().size(), 19u);
  EXPECT_EQ(c["b"].as<std::string>(), c["c"].as<std::string>());
  EXPECT_EQ(now_string("%Y"), year);
}

TEST(Interpolation, EscapedDollarIsLiteral) {
  EXPECT_EQ(resolve_text("a: 1\nb: '\\${a}'\n")["b"].as<std::string>(), "${a}");
}

TEST(Interpolation, CyclesNameTheChain) {
  EXPECT_USER_ERROR(resolve_text("a: ${b}\nb: ${c}\nc: ${a}\n"), "interpolation cycle",
                    "a -> b -> c -> a");
  EXPECT_USER_ERROR(resolve_text("a: ${a}\n"), "a -> a");
  EXPECT_USER_ERROR(resolve_text("m:\n  x: ${m}\n"), "interpolation cycle");
}

TEST(Interpolation, DanglingReferenceNamesKeyAndSuggests) {
  EXPECT_USER_ERROR(resolve_text("model: {d_model: 4}\nx: ${model.d_modl}\n"), "at 'x'",
                    "'model.d_modl'", "did you mean model.d_model?");
  EXPECT_USER_ERROR(resolve_text("x: ${..up}\n"), "above the config root");
  EXPECT_USER_ERROR(resolve_text("x: ${nope:1}\n"), "unknown resolver 'nope'");
  EXPECT_USER_ERROR(resolve_text("l: [1]\nx: a${l}\n"), "cannot be part of a string");
}

TEST(Interpolation, ComposeResolvesAfterOverrides) {
  YAML::Node c =
      testing::compose_in(testing::source_configs(), {"name=abc", "+model.width=${model.d_model}"});
  EXPECT_EQ(c["model"]["width"].as<int>(), 128);
  EXPECT_EQ(c["run"]["dir"].as<std::string>().rfind("runs/abc/", 0), 0u);
  YAML::Node raw = testing::compose_in(testing::source_configs(), {}, /*resolve=*/false);
  EXPECT_EQ(raw["run"]["dir"].as<std::string>(), "runs/${name}/${now:%Y-%m-%d_%H-%M-%S}");
}

}  // namespace
}  // namespace attnlab::config
