// The typed-options binder (config/options.h) on a made-up options struct with every supported
// field type: defaults when the group is absent, each key applied by the override type rule, the
// one-line errors naming the dotted key (wrong type, failed check, unknown key with a suggestion,
// a group that is not a map), nested structs, optional fields and null, the --defaults docs and
// the shipped-default comparison.
#include "config/options.h"

#include <gtest/gtest.h>
#include <torch/arg.h>
#include <yaml-cpp/yaml.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/error.h"

namespace attnlab {
namespace {

struct InnerOptions {
  TORCH_ARG(double, tau) = 1e-5;
  TORCH_ARG(std::vector<std::string>, params) = std::vector<std::string>{"blocks.*.weight"};

 public:
  template <class V>
  void visit(V& v) {
    v("tau", tau(), "threshold", config::at_least(0.0));
    v("params", params(), "globs", config::non_empty());
  }
};

struct ExampleOptions {
  TORCH_ARG(bool, enabled) = false;
  TORCH_ARG(int64_t, steps) = 100;
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(std::string, shape) = "linear";
  TORCH_ARG(std::vector<double>, betas) = std::vector<double>{0.9, 0.95};
  TORCH_ARG(std::vector<int64_t>, layers) = std::vector<int64_t>{0, 1};
  TORCH_ARG(std::optional<int64_t>, max_steps) = std::nullopt;
  TORCH_ARG(InnerOptions, inner) = InnerOptions{};

 public:
  template <class V>
  void visit(V& v) {
    v("enabled", enabled(), "switch");
    v("steps", steps(), "step count", config::at_least(0));
    v("lr", lr(), "learning rate", config::greater_than(0.0), config::finite());
    v("shape", shape(), "decay shape", config::one_of({"linear", "cosine"}));
    v("betas", betas(), "Adam's betas", config::length_is(2), config::in_range(0.0, 0.999));
    v("layers", layers(), "block indices");
    v("max_steps", max_steps(), "run length; null: the trainer's", config::greater_than(0));
    v("inner", inner(), "nested options");
  }
};

ExampleOptions bind_yaml(const std::string& yaml) {
  return config::bind<ExampleOptions>(YAML::Load(yaml), "example",
                                      config::BindScope{"example 'e'", {"name"}});
}

// The UserError message of binding `yaml` ("" when it binds).
std::string bind_error(const std::string& yaml) {
  try {
    bind_yaml(yaml);
  } catch (const UserError& error) {
    return error.what();
  }
  return "";
}

TEST(Options, AbsentOrNullGroupGivesTheDefaults) {
  for (const std::string yaml : {"", "~", "{}"}) {
    const ExampleOptions o = bind_yaml(yaml);
    EXPECT_FALSE(o.enabled());
    EXPECT_EQ(o.steps(), 100);
    EXPECT_DOUBLE_EQ(o.lr(), 1e-3);
    EXPECT_EQ(o.shape(), "linear");
    EXPECT_EQ(o.betas(), (std::vector<double>{0.9, 0.95}));
    EXPECT_FALSE(o.max_steps().has_value());
    EXPECT_DOUBLE_EQ(o.inner().tau(), 1e-5);
  }
}

TEST(Options, EveryKeyOverridesItsField) {
  const ExampleOptions o = bind_yaml(
      "{name: e, enabled: true, steps: 7, lr: 1, shape: cosine, betas: [0.5, 0.6],"
      " layers: [3, -1], max_steps: 40, inner: {tau: 0.25, params: ['a.*', 'b']}}");
  EXPECT_TRUE(o.enabled());
  EXPECT_EQ(o.steps(), 7);
  EXPECT_DOUBLE_EQ(o.lr(), 1.0);  // an int where the default is a float: promoted
  EXPECT_EQ(o.shape(), "cosine");
  EXPECT_EQ(o.betas(), (std::vector<double>{0.5, 0.6}));
  EXPECT_EQ(o.layers(), (std::vector<int64_t>{3, -1}));
  EXPECT_EQ(o.max_steps(), std::optional<int64_t>(40));
  EXPECT_DOUBLE_EQ(o.inner().tau(), 0.25);
  EXPECT_EQ(o.inner().params(), (std::vector<std::string>{"a.*", "b"}));
  // A key left out keeps its default; null resets an optional to "none".
  EXPECT_EQ(bind_yaml("{max_steps: null, steps: 3}").max_steps(), std::nullopt);
  EXPECT_DOUBLE_EQ(bind_yaml("{inner: {params: [x]}}").inner().tau(), 1e-5);
}

TEST(Options, WrongTypeNamesTheKeyTheTypeAndTheValue) {
  EXPECT_EQ(bind_error("{lr: abc}"), "example.lr: expected float, got 'abc'");
  EXPECT_EQ(bind_error("{steps: 1.5}"), "example.steps: expected int, got '1.5'");
  EXPECT_EQ(bind_error("{enabled: yes}"), "example.enabled: expected bool, got 'yes'");
  EXPECT_EQ(bind_error("{betas: abc}"), "example.betas: expected list of floats, got 'abc'");
  EXPECT_EQ(bind_error("{betas: [0.9, x]}"),
            "example.betas: expected list of floats, got '[0.9, x]'");
  EXPECT_EQ(bind_error("{lr: null}"), "example.lr: expected float, got null");
  EXPECT_EQ(bind_error("{max_steps: many}"), "example.max_steps: expected int or null, got 'many'");
  EXPECT_EQ(bind_error("{lr: '0.1'}"), "example.lr: expected float, got '0.1'");  // quoted
  // A scalar where the default is a string becomes that string (the override rule).
  EXPECT_EQ(bind_error("{shape: 3}"), "example.shape: expected one of linear, cosine, got '3'");
}

TEST(Options, FailedChecksNameTheKeyAndWhatPasses) {
  EXPECT_EQ(bind_error("{steps: -1}"), "example.steps: expected a number >= 0, got -1");
  EXPECT_EQ(bind_error("{lr: 0.0}"), "example.lr: expected a number > 0, got 0");
  EXPECT_EQ(bind_error("{lr: .inf}"), "example.lr: expected a finite number, got .inf");
  EXPECT_EQ(bind_error("{betas: [0.9]}"), "example.betas: expected a list of 2 values, got [0.9]");
  EXPECT_EQ(bind_error("{betas: [0.9, 1.5]}"),
            "example.betas[1]: expected a number in [0, 0.999], got 1.5");
  EXPECT_EQ(bind_error("{max_steps: 0}"), "example.max_steps: expected a number > 0, got 0");
  EXPECT_EQ(bind_error("{inner: {params: []}}"),
            "example.inner.params: expected a list of at least one value, got []");
  EXPECT_EQ(bind_error("{inner: {tau: -0.5}}"),
            "example.inner.tau: expected a number >= 0, got -0.5");
}

TEST(Options, UnknownKeyListsTheOptionsAndSuggestsTheClosest) {
  EXPECT_EQ(bind_error("{lrr: 1}"),
            "example.lrr: example 'e' has no option 'lrr'; its options: enabled, steps, lr, "
            "shape, betas, layers, max_steps, inner (did you mean lr?)");
  EXPECT_EQ(bind_error("{inner: {tauu: 1}}"),
            "example.inner.tauu: example.inner has no option 'tauu'; its options: tau, params "
            "(did you mean tau?)");
  EXPECT_EQ(bind_error("{name: e}"), "");  // a reserved key of the group, not an option
  EXPECT_EQ(bind_error("[1, 2]"), "example: expected a map of options, got '[1, 2]'");
  EXPECT_EQ(bind_error("{inner: 3}"), "example.inner: expected a map of options, got '3'");
}

// A number check on a string field.
struct MisdeclaredOptions {
  TORCH_ARG(std::string, shape) = "linear";

 public:
  template <class V>
  void visit(V& v) {
    v("shape", shape(), "a string with a number check", config::at_least(0.0));
  }
};

TEST(Options, ACheckOnAFieldItCannotApplyToIsAProgrammingError) {
  EXPECT_THROW(config::bind<MisdeclaredOptions>(YAML::Load("{}"), "m"), std::logic_error);
}

TEST(Options, DocsListEveryFieldWithTypeDefaultMeaningAndChecks) {
  const std::vector<config::OptionDoc> docs = config::option_docs<ExampleOptions>();
  ASSERT_EQ(docs.size(), 9u);
  EXPECT_EQ(docs[2].key, "lr");
  EXPECT_EQ(docs[2].type, "float");
  EXPECT_EQ(docs[2].default_value, "0.001");
  EXPECT_EQ(docs[2].meaning, "learning rate");
  EXPECT_EQ(docs[2].constraints, "a number > 0; a finite number");
  EXPECT_EQ(docs[4].default_value, "[0.9, 0.95]");
  EXPECT_EQ(docs[6].type, "int or null");
  EXPECT_EQ(docs[6].default_value, "null");
  EXPECT_EQ(docs[7].key, "inner.tau");
  EXPECT_EQ(docs[7].default_value, "1e-5");
  EXPECT_EQ(docs[8].type, "list of strings");
  const std::string table = config::format_option_table(docs, "  ");
  // Columns padded to the longest key (inner.params) and type (list of strings), plus two spaces.
  EXPECT_NE(table.find("  lr" + std::string(12, ' ') + "float" + std::string(12, ' ') + "0.001"),
            std::string::npos)
      << table;

  // The defaults as a config group read back into the same struct.
  const YAML::Node defaults = config::defaults_yaml<ExampleOptions>();
  EXPECT_TRUE(defaults["max_steps"].IsNull());
  EXPECT_EQ(defaults["inner"]["tau"].Scalar(), "1e-5");
  EXPECT_TRUE(config::differing_defaults<ExampleOptions>(defaults, "example").empty());
}

TEST(Options, DifferingDefaultsNamesEachKeyWhoseShippedValueDiffers) {
  EXPECT_TRUE(config::differing_defaults<ExampleOptions>(
                  YAML::Load("{lr: 1.0e-3, betas: [0.9, 0.95], inner: {tau: 1.0e-5}}"), "ex")
                  .empty());
  const std::vector<std::string> differences = config::differing_defaults<ExampleOptions>(
      YAML::Load("{lr: 3.0e-4, steps: 100, inner: {params: [x]}}"), "ex");
  EXPECT_EQ(differences, (std::vector<std::string>{
                             "ex.lr: the shipped config says 0.0003, the struct default is 0.001",
                             "ex.inner.params: the shipped config says [x], the struct default is "
                             "[blocks.*.weight]"}));
  EXPECT_THROW(config::differing_defaults<ExampleOptions>(YAML::Load("{lrr: 1}"), "ex"), UserError);
}

TEST(Options, FloatsPrintShortestAndStayFloats) {
  EXPECT_EQ(config::format_float(1e-3), "0.001");
  EXPECT_EQ(config::format_float(3e-4), "0.0003");
  EXPECT_EQ(config::format_float(1e-8), "1e-8");
  EXPECT_EQ(config::format_float(1e20), "1e20");
  EXPECT_EQ(config::format_float(1.0), "1.0");
  EXPECT_EQ(config::format_float(0.1), "0.1");
  EXPECT_EQ(config::format_float(-2.5), "-2.5");
  EXPECT_EQ(config::format_float(0.1 + 0.2), "0.30000000000000004");
}

}  // namespace
}  // namespace attnlab

namespace attnlab {
namespace {

// One value where a list is expected binds as a list of one (`routed_k: 2` for every layer), and
// the config tree it came from is left as it was (yaml-cpp's Node assignment would write the
// list through into the group).
TEST(Options, AScalarForAListIsAListOfOneAndTheConfigIsUnchanged) {
  const YAML::Node group = YAML::Load("{layers: 3, inner: {params: 'embed.*'}}");
  const std::string before = YAML::Dump(group);
  const ExampleOptions bound = config::bind<ExampleOptions>(group, "example");
  EXPECT_EQ(bound.layers(), (std::vector<int64_t>{3}));
  EXPECT_EQ(bound.inner().params(), (std::vector<std::string>{"embed.*"}));
  EXPECT_EQ(YAML::Dump(group), before);
  EXPECT_THROW(config::bind<ExampleOptions>(YAML::Load("{betas: 0.9}"), "example"), UserError);
}

}  // namespace
}  // namespace attnlab
