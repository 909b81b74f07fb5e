// The config engine's input limits (issue 17): YAML alias bombs, recursive aliases, deep nesting
// and 20,000-level dotted keys, long keys, big documents and maps, interpolation and defaults-list
// bombs, unclosed quotes and group options that are paths. Each fails fast with one UserError
// naming the file (file:line:col) or the override, and ordinary configs are untouched.
#include "config/input_limits.h"

#include <yaml-cpp/yaml.h>

#include "config/yaml_io.h"
#include "config/yaml_tree.h"
#include "tests/support/config_test_util.h"

namespace attnlab::config {
namespace {
using testing::compose_in;
using testing::TempDir;

// A "billion laughs" document: `levels` anchors, each a list of `width` aliases of the previous
// one, so the last one expands to width^levels values.
std::string alias_bomb(int levels, int width) {
  std::string text = "l0: &l0 [";
  for (int i = 0; i < width; ++i) text += std::string(i ? ", " : "") + "lol";
  text += "]\n";
  for (int level = 1; level < levels; ++level) {
    std::string name = "l" + std::to_string(level), previous = "l" + std::to_string(level - 1);
    text += name + ": &" + name + " [";
    for (int i = 0; i < width; ++i) text += std::string(i ? ", " : "") + "*" + previous;
    text += "]\n";
  }
  return text;
}

// A config dir whose primary config holds `text` after an empty defaults list.
void write_primary(const TempDir& d, const std::string& text) { d.write("config.yaml", text); }

TEST(InputLimits, AliasBombIsAnErrorNamingTheFile) {
  // 10^9 values once expanded: yaml-cpp itself loads it as a small shared graph, and every later
  // copy, merge or save expanded it (minutes, more than 1 GB).
  EXPECT_USER_ERROR(parse_yaml(alias_bomb(9, 10), "bomb.yaml"), "bomb.yaml:", "more than 20000",
                    "alias");
  // Smaller bombs that would still expand to 59,049 values fail in composition too.
  TempDir d;
  write_primary(d, alias_bomb(5, 9));
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "config.yaml:", "expands to more than 20000");
  // Aliases within the limit still work and count as copies.
  write_primary(d, "base: &b {w: 1, h: [1, 2]}\ncopy: *b\n");
  YAML::Node c = compose_in(d.path(), {"copy.w=2"});
  EXPECT_EQ(c["copy"]["w"].as<int>(), 2);
  EXPECT_EQ(c["base"]["w"].as<int>(), 1);
}

TEST(InputLimits, RecursiveAliasIsAnErrorNotACrash) {
  EXPECT_USER_ERROR(parse_yaml("a: &a [*a]\n", "loop.yaml"), "loop.yaml:1:", "recursive alias",
                    "'*a'");
  TempDir d;
  write_primary(d, "x: 1\nb: &b {c: {d: *b}}\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "config.yaml:2:", "recursive alias", "'*b'");
}

TEST(InputLimits, NestingDepthIsLimited) {
  TempDir d;
  // 100 levels: below yaml-cpp's own guard (500), above the engine's 64.
  write_primary(d, "a: " + std::string(100, '[') + "1" + std::string(100, ']') + "\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "config.yaml:1:", "nest more than 64 levels");
  std::string block = "a:\n";
  for (int level = 1; level < 80; ++level)
    block += std::string(2 * level, ' ') + "k" + std::to_string(level) + ":\n";
  write_primary(d, block);
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "config.yaml:", "nest more than 64 levels");
  // An alias may not carry a deep value deeper than the limit either.
  write_primary(d, "a: &a " + std::string(40, '[') + "1" + std::string(40, ']') +
                       "\nb: " + std::string(30, '[') + "*a" + std::string(30, ']') + "\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "config.yaml:2:", "nest more than 64 levels");
  write_primary(d, "a: " + std::string(60, '[') + "1" + std::string(60, ']') + "\n");
  EXPECT_TRUE(compose_in(d.path(), {})["a"].IsSequence());
}

TEST(InputLimits, DeepDottedKeyIsAnErrorNotACrash) {
  // A 20,000-level dotted key built 20,000 nested maps and crashed (stack overflow) later.
  std::string key = "a";
  for (int i = 1; i < 20000; ++i) key += ".a";
  YAML::Node base = parse_yaml("x: 1\n", "base");
  EXPECT_USER_ERROR(apply_overrides(base, {"++" + key + "=1"}), "cannot parse override '++a.a.a",
                    "20000 parts", "at most 64 levels");
  TempDir d;
  write_primary(d, "x: 1\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {"+" + key + "=1"}), "20000 parts");
  std::string ok = "a";
  for (int i = 1; i < 64; ++i) ok += ".a";
  EXPECT_EQ(find_node(apply_overrides(base, {"++" + ok + "=7"}), ok).as<int>(), 7);
}

TEST(InputLimits, KeyLengthIsLimited) {
  const std::string long_key(300, 'k');
  TempDir d;
  write_primary(d, "x: 1\n" + long_key + ": 1\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "config.yaml:2:1:", "300 bytes", "limited to 256");
  write_primary(d, "x: 1\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {"++" + long_key + "=1"}), "cannot parse override",
                    "300 bytes");
  EXPECT_USER_ERROR(compose_in(d.path(), {"++y={" + long_key + ": 1}"}), "cannot parse override",
                    "map key of 300 bytes");
  EXPECT_EQ(compose_in(d.path(), {"++" + std::string(200, 'k') + "=1"}).size(), 2u);
}

TEST(InputLimits, DocumentAndMapSizeAreLimited) {
  TempDir d;
  // 2 MiB of comments: small in values, too big as a config file.
  std::string padding;
  while (padding.size() < (size_t{2} << 20)) padding += "# " + std::string(98, 'x') + "\n";
  write_primary(d, "x: 1\n" + padding);
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "config.yaml", "limited to 1 MiB");
  YAML::Node base = parse_yaml("x: 1\n", "base");
  EXPECT_USER_ERROR(apply_overrides(base, {"x=" + std::string((size_t{1} << 20) + 1, 'v')}),
                    "cannot parse override 'x=vvv", "limited to 1 MiB");
  // A mapping with more keys than the limit (yaml-cpp's lookups make merging it quadratic).
  std::string wide;
  for (int i = 0; i < 2500; ++i) wide += "k" + std::to_string(i) + ": " + std::to_string(i) + "\n";
  write_primary(d, wide);
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "config.yaml:", "more than 2000 keys");
  std::string wide_override = "++m={";
  for (int i = 0; i < 2500; ++i) wide_override += (i ? ", k" : "k") + std::to_string(i) + ": 1";
  EXPECT_USER_ERROR(apply_overrides(base, {wide_override + "}"}), "cannot parse override",
                    "more than 2000 keys");
}

TEST(InputLimits, LoadingAHugeOrEndlessFileStopsAtTheLimit) {
  // /dev/zero never ends; the loader reads one byte past the limit and stops.
  EXPECT_USER_ERROR(load_config_file("/dev/zero"), "/dev/zero", "limited to 1 MiB");
}

TEST(InputLimits, UnclosedQuoteIsASyntaxError) {
  TempDir d;
  // yaml-cpp accepts an unterminated quote when the file ends with a line break, so
  // `name: 'abc` composed to name="abc " and the command exited 0.
  for (const std::string text :
       {"name: 'abc\n", "name: \"abc\n\n", "name: 'abc\nx: 1\n", "x: 1\nname: 'abc"}) {
    write_primary(d, text);
    EXPECT_USER_ERROR(compose_in(d.path(), {}), "config.yaml:", "YAML syntax error",
                      "unclosed quote");
  }
  // Quotes that are closed, quotes inside plain text and block scalars are fine.
  write_primary(d, "a: 'it''s'\nb: \"x\\\"y\"\nc: don't\nd: |\n  'open\n");
  YAML::Node c = compose_in(d.path(), {});
  EXPECT_EQ(c["a"].as<std::string>(), "it's");
  EXPECT_EQ(c["c"].as<std::string>(), "don't");
  EXPECT_EQ(c["d"].as<std::string>(), "'open\n");
  EXPECT_USER_ERROR(parse_yaml("k: 'x\n", "saved/config.yaml"),
                    "saved/config.yaml:", "unclosed quote");
}

TEST(InputLimits, GroupOptionsAreNamesNotPaths) {
  TempDir d;
  d.write("configs/config.yaml",
          "defaults:\n  - _self_\n  - experiment: null\n  - model: a\nname: plain\n");
  d.write("configs/model/a.yaml", "w: 1\n");
  d.write("configs/experiment/tiny.yaml", "# @package _global_\nname: tiny\n");
  d.write("evil.yaml", "# @package _global_\nname: evil\n");  // outside the config directory
  const std::string dir = d.path() + "/configs";
  EXPECT_EQ(compose_in(dir, {"experiment=tiny"})["name"].as<std::string>(), "tiny");
  for (const std::string o :
       {"experiment=../../evil", "+experiment=../../evil", "experiment=/tmp/evil",
        "model=../../evil", "experiment=sub/tiny", "experiment=.hidden"}) {
    const std::string quoted = "cannot apply '" + o + "'";
    EXPECT_USER_ERROR(compose_in(dir, {o}), quoted.c_str(), "is not an option name of config group",
                      "not paths", "available: ");
  }
  EXPECT_USER_ERROR(compose_in(dir, {"~model=../x"}), "not an option name");
  // In a defaults list too.
  d.write("configs/config.yaml", "defaults:\n  - model: sub/a\n");
  EXPECT_USER_ERROR(compose_in(dir, {}), "config.yaml:2:", "option of group 'model'", "not a path");
}

TEST(InputLimits, InterpolationBombIsAnError) {
  // Each level doubles its predecessor (2^17 values for a15) or quadruples it (4^11 * 16 bytes of
  // text for t11).
  std::string text = "a0: [x, x]\n";
  for (int i = 1; i < 16; ++i) {
    std::string p = "'${a" + std::to_string(i - 1) + "}'";
    text += "a" + std::to_string(i) + ": [" + p + ", " + p + "]\n";
  }
  EXPECT_USER_ERROR(resolve_interpolations(parse_yaml(text, "t")), "interpolation at 'a",
                    "copy more than 100000 values");
  std::string strings = "t0: xxxxxxxxxxxxxxxx\n";
  for (int i = 1; i < 12; ++i) {
    std::string p = "${t" + std::to_string(i - 1) + "}";
    strings += "t" + std::to_string(i) + ": " + p + p + p + p + "\n";
  }
  EXPECT_USER_ERROR(resolve_interpolations(parse_yaml(strings, "t")), "interpolation at 't",
                    "more than 16 MiB of text");
  // A reference that would carry a value below the depth limit.
  std::string deep = "d: " + std::string(40, '[') + "1" + std::string(40, ']') + "\n";
  deep += "x: {y: {z: " + std::string(22, '[') + "'${d}'" + std::string(22, ']') + "}}\n";
  EXPECT_USER_ERROR(resolve_interpolations(parse_yaml(deep, "t")), "nest more than 64");
}

TEST(InputLimits, DefaultsListBombAndCycleAreErrors) {
  TempDir d;
  // Every level lists the next one twice: 2^14 files to load.
  d.write("config.yaml", "defaults:\n  - l1\n  - l1\n");
  for (int i = 1; i < 14; ++i)
    d.write("l" + std::to_string(i) + ".yaml",
            "defaults:\n  - l" + std::to_string(i + 1) + "\n  - l" + std::to_string(i + 1) + "\n");
  d.write("l14.yaml", "x: 1\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "load more than 1000 config files");
  d.write("config.yaml", "defaults:\n  - a\n");
  d.write("a.yaml", "defaults:\n  - b\n");
  d.write("b.yaml", "defaults:\n  - a\n");
  EXPECT_USER_ERROR(compose_in(d.path(), {}), "a.yaml: a defaults list includes this config",
                    "config.yaml ->", "b.yaml ->");
}

TEST(InputLimits, ShippedConfigsAreWellWithinTheLimits) {
  for (const std::string name :
       {"config", "model/gpt", "experiment/tiny", "task/classification", "trainer/default"}) {
    ConfigFile file = load_config_file(testing::source_configs() + "/" + name + ".yaml");
    EXPECT_LT(file.nodes, kMaxNodes / 20) << name;
  }
  EXPECT_NO_THROW(compose_in(testing::source_configs(), {"experiment=tiny", "attention=diff"}));
}

}  // namespace
}  // namespace attnlab::config
