// YAML-level errors: syntax errors carry file:line:column, non-mapping files and bad keys are
// named, and the emitter's quoting keeps types across a save/load round trip.
#include <yaml-cpp/yaml.h>

#include <regex>

#include "config/yaml_io.h"
#include "config/yaml_tree.h"
#include "tests/support/config_test_util.h"

namespace attnlab::config {
namespace {
using testing::compose_in;
using testing::TempDir;

TEST(YamlErrors, SyntaxErrorHasFileLineColumn) {
  TempDir d;
  d.write("config.yaml", "defaults:\n  - model: small\na: 1\nb: [1, 2\n");
  d.write("model/small.yaml", "w: 1\n");
  try {
    compose_in(d.path(), {});
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_TRUE(std::regex_search(e.what(), std::regex("config\\.yaml:[45]:[0-9]+: YAML syntax")))
        << e.what();
  }
  d.write("config.yaml", "defaults:\n  - model: small\n");
  d.write("model/small.yaml", "w: 1\nx: y: z\n");
  try {
    compose_in(d.path(), {});
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_TRUE(std::regex_search(e.what(), std::regex("model/small\\.yaml:2:[0-9]+: YAML")))
        << e.what();
  }
}

TEST(YamlErrors, NonMappingFilesAndBadHeaders) {
  TempDir d;
  d.write("config.yaml", "defaults:\n  - model: small\n");
  d.write("model/small.yaml", "- 1\n- 2\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "small.yaml", "must be a mapping", "list");
  d.write("model/small.yaml", "just a string\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "must be a mapping", "string");
  d.write("model/small.yaml", "# @package\nw: 1\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "@package' needs a package name");
  d.write("model/small.yaml", "? [a, b]\n: 1\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "keys must be scalars");
  d.write("model/small.yaml", "a: " + std::string(5000, '[') + "\n");  // the depth limit
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "small.yaml:1:", "nest more than 64 levels");
  d.write("model/small.yaml", "");  // an empty option is an empty mapping
  EXPECT_TRUE(compose_in(d.path(), {})["model"].IsMap());
}

TEST(YamlErrors, PackageCollisionIsAUserError) {
  TempDir d;
  d.write("config.yaml", "defaults:\n  - _self_\n  - model: small\nmodel: 3\n");
  d.write("model/small.yaml", "w: 1\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "'model'", "not a mapping");
}

TEST(YamlEmit, RoundTripKeepsTypes) {
  YAML::Node c = parse_yaml(
      "i: 1\nf: 1.5e-3\nb: true\nn: null\ns: hello\nqs: '12'\nqb: 'true'\nqn: 'null'\n"
      "e: ''\nl: [1, a]\nm: {x: [{y: 1}]}\nem: {}\nel: []\n",
      "test");
  YAML::Node back = parse_yaml(to_yaml(c), "emitted");
  for (const std::string key :
       {"i", "f", "b", "n", "s", "qs", "qb", "qn", "e", "l", "m", "em", "el"})
    EXPECT_EQ(value_kind(back[key]), value_kind(c[key])) << key << "\n" << to_yaml(c);
  EXPECT_EQ(back["qs"].as<std::string>(), "12");
  EXPECT_EQ(back["m"]["x"][0]["y"].as<int>(), 1);
  EXPECT_NE(to_yaml(c).find("l: [1, a]"), std::string::npos) << to_yaml(c);
}

TEST(YamlTree, CoreSchemaInference) {
  EXPECT_EQ(infer_scalar_kind("0x1F"), ValueKind::kInt);
  EXPECT_EQ(infer_scalar_kind("0o17"), ValueKind::kInt);
  EXPECT_EQ(infer_scalar_kind("+12"), ValueKind::kInt);
  EXPECT_EQ(infer_scalar_kind("1."), ValueKind::kFloat);
  EXPECT_EQ(infer_scalar_kind("-.inf"), ValueKind::kFloat);
  EXPECT_EQ(infer_scalar_kind(".nan"), ValueKind::kFloat);
  EXPECT_EQ(infer_scalar_kind("1e-5"), ValueKind::kFloat);
  EXPECT_EQ(infer_scalar_kind("."), ValueKind::kString);
  EXPECT_EQ(infer_scalar_kind("yes"), ValueKind::kString);  // YAML 1.1 bools are strings in 1.2
  EXPECT_EQ(infer_scalar_kind("~"), ValueKind::kNull);
  EXPECT_EQ(infer_scalar_kind("1_000"), ValueKind::kString);
}

}  // namespace
}  // namespace attnlab::config
