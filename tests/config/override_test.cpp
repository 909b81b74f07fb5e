// Override grammar (parse_override) and value overrides on a composed config: every form, every
// value type, type checks, and the missing-key message with its suggestion.
#include <yaml-cpp/yaml.h>

#include "config/override_apply.h"
#include "config/override_parser.h"
#include "config/yaml_io.h"
#include "config/yaml_tree.h"
#include "tests/support/config_test_util.h"

namespace attnlab::config {
namespace {
using testing::compose_in;
using testing::source_configs;

TEST(OverrideParser, Prefixes) {
  EXPECT_EQ(parse_override("a.b=1").op, OverrideOp::kSet);
  EXPECT_EQ(parse_override("+a.b=1").op, OverrideOp::kAdd);
  EXPECT_EQ(parse_override("++a.b=1").op, OverrideOp::kForceAdd);
  Override del = parse_override("~a.b");
  EXPECT_EQ(del.op, OverrideOp::kDelete);
  EXPECT_FALSE(del.has_value);
  EXPECT_EQ(del.key, "a.b");
  EXPECT_TRUE(parse_override("~a.b=3").has_value);
}

TEST(OverrideParser, ScalarKinds) {
  auto kind = [](const std::string& v) { return value_kind(parse_override("k=" + v).value); };
  EXPECT_EQ(kind("12"), ValueKind::kInt);
  EXPECT_EQ(kind("-7"), ValueKind::kInt);
  EXPECT_EQ(kind("3e-4"), ValueKind::kFloat);
  EXPECT_EQ(kind("1e3"), ValueKind::kFloat);
  EXPECT_EQ(kind("0.5"), ValueKind::kFloat);
  EXPECT_EQ(kind(".5"), ValueKind::kFloat);
  EXPECT_EQ(kind("true"), ValueKind::kBool);
  EXPECT_EQ(kind("False"), ValueKind::kBool);
  EXPECT_EQ(kind("null"), ValueKind::kNull);
  EXPECT_EQ(kind("abc"), ValueKind::kString);
  EXPECT_EQ(kind("'12'"), ValueKind::kString);
  EXPECT_EQ(kind("\"true\""), ValueKind::kString);
  EXPECT_EQ(kind(""), ValueKind::kString);
  EXPECT_EQ(kind("1e"), ValueKind::kString);
  EXPECT_DOUBLE_EQ(parse_override("k=3e-4").value.as<double>(), 3e-4);
  EXPECT_DOUBLE_EQ(parse_override("k=1e3").value.as<double>(), 1000.0);
}

TEST(OverrideParser, StringsListsMapsAndInterpolations) {
  EXPECT_EQ(parse_override("k='a,b'").value.Scalar(), "a,b");
  EXPECT_EQ(parse_override("k=\"it's\"").value.Scalar(), "it's");
  EXPECT_EQ(parse_override("k='it\\'s'").value.Scalar(), "it's");
  EXPECT_EQ(parse_override("k= hello world ").value.Scalar(), "hello world");
  EXPECT_EQ(parse_override("k=runs/${name}/${now:%H-%M},x").sweep.items.size(), 2u);
  EXPECT_EQ(parse_override("k=${oc.env:A,b}").value.Scalar(), "${oc.env:A,b}");
  YAML::Node list = parse_override("k=[1, 2.5, x, 'y,z', [3], {a: 1}]").value;
  ASSERT_TRUE(list.IsSequence());
  ASSERT_EQ(list.size(), 6u);
  EXPECT_EQ(list[0].as<int>(), 1);
  EXPECT_EQ(value_kind(list[1]), ValueKind::kFloat);
  EXPECT_EQ(list[3].Scalar(), "y,z");
  EXPECT_EQ(list[4][0].as<int>(), 3);
  EXPECT_EQ(list[5]["a"].as<int>(), 1);
  YAML::Node map = parse_override("k={a: 1, b: [x, y], 'c d': {e: null}}").value;
  ASSERT_TRUE(map.IsMap());
  EXPECT_EQ(map["b"][1].Scalar(), "y");
  EXPECT_TRUE(map["c d"]["e"].IsNull());
  EXPECT_EQ(parse_override("k={a:1}").value["a"].as<int>(), 1);  // Hydra allows no space
  EXPECT_EQ(parse_override("k=[]").value.size(), 0u);
  EXPECT_TRUE(parse_override("k={}").value.IsMap());
}

// 'data.separator=\n\n' (README's example) was the two letters "nn": an unquoted backslash
// dropped itself before any character. Letters and digits after a backslash now stay as typed,
// as they do quoted, for the keys that read escapes (data.separator: \n \t \r \\).
TEST(OverrideParser, BackslashEscapesOfLettersStayAsTypedQuotedOrNot) {
  EXPECT_EQ(parse_override("data.separator=\\n\\n").value.Scalar(), "\\n\\n");
  EXPECT_EQ(parse_override("data.separator=\"\\n\\n\"").value.Scalar(), "\\n\\n");
  EXPECT_EQ(parse_override("data.separator='\\n\\n'").value.Scalar(), "\\n\\n");
  EXPECT_EQ(parse_override("k=\\n").value.Scalar(), "\\n");
  EXPECT_EQ(parse_override("k=a\\tb\\r").value.Scalar(), "a\\tb\\r");
  EXPECT_EQ(parse_override("k=\\s+\\d").value.Scalar(), "\\s+\\d");
  // \\ is one backslash in both forms; punctuation escapes stay what they were.
  EXPECT_EQ(parse_override("k=a\\\\b").value.Scalar(), "a\\b");
  EXPECT_EQ(parse_override("k='a\\\\b'").value.Scalar(), "a\\b");
  EXPECT_EQ(parse_override("k=a\\,b").value.Scalar(), "a,b");
  EXPECT_EQ(parse_override("k=[\\n, x]").value[0].Scalar(), "\\n");
}

TEST(OverrideParser, SyntaxErrors) {
  EXPECT_USER_ERROR(parse_override("novalue"), "missing '='", "'novalue'");
  EXPECT_USER_ERROR(parse_override("=3"), "missing key");
  EXPECT_USER_ERROR(parse_override("a..b=3"), "malformed key");
  EXPECT_USER_ERROR(parse_override("a b=3"), "invalid character ' '");
  EXPECT_USER_ERROR(parse_override("k=[1,2"), "missing ']'");
  EXPECT_USER_ERROR(parse_override("k={a 1}"), "expected ':'");
  EXPECT_USER_ERROR(parse_override("k='abc"), "unterminated");
  EXPECT_USER_ERROR(parse_override("k=${a"), "unterminated '${'");
  EXPECT_USER_ERROR(parse_override("k=a]"), "unexpected ']'");
  EXPECT_USER_ERROR(parse_override("k={a: 1, a: 2}"), "duplicate map key 'a'");
  EXPECT_USER_ERROR(parse_override("k=" + std::string(100000, '[')), "nest more than");
}

TEST(ValueOverrides, SetEveryType) {
  YAML::Node c =
      compose_in(source_configs(), {"model.d_model=256", "optim.lr=3e-4", "attention.rope=false",
                                    "name=my run", "optim.betas=[0.8,0.9]", "init_from=ckpt.pt",
                                    "lr_multipliers={embed: 0.1}", "data.corpus=[a, b]"});
  EXPECT_EQ(c["model"]["d_model"].as<int64_t>(), 256);
  EXPECT_DOUBLE_EQ(c["optim"]["lr"].as<double>(), 3e-4);
  EXPECT_FALSE(c["attention"]["rope"].as<bool>());
  EXPECT_EQ(c["name"].as<std::string>(), "my run");
  EXPECT_DOUBLE_EQ(c["optim"]["betas"][0].as<double>(), 0.8);
  EXPECT_EQ(c["init_from"].as<std::string>(), "ckpt.pt");
  EXPECT_DOUBLE_EQ(c["lr_multipliers"]["embed"].as<double>(), 0.1);
  EXPECT_EQ(c["data"]["corpus"][1].as<std::string>(), "b");
  EXPECT_EQ(c["run"]["dir"].as<std::string>().rfind("runs/my run/", 0), 0u);
}

TEST(ValueOverrides, PromotionsAndStrings) {
  YAML::Node c = compose_in(source_configs(), {"optim.lr=1", "name=42", "model.dropout=0"});
  EXPECT_EQ(value_kind(c["optim"]["lr"]), ValueKind::kFloat);  // int -> float promotion
  EXPECT_DOUBLE_EQ(c["optim"]["lr"].as<double>(), 1.0);
  EXPECT_EQ(value_kind(c["name"]), ValueKind::kString);  // scalar into a string default
  EXPECT_EQ(to_yaml(c["name"]), "\"42\"\n");
  EXPECT_EQ(compose_in(source_configs(), {"init_from=3"})["init_from"].as<int>(), 3);  // null
  EXPECT_TRUE(compose_in(source_configs(), {"model.d_model=null"})["model"]["d_model"].IsNull());
}

TEST(ValueOverrides, TypeMismatchNamesKeyValueAndType) {
  EXPECT_USER_ERROR(compose_in(source_configs(), {"model.d_model=abc"}), "'model.d_model'", "'abc'",
                    "expected int", "got string");
  EXPECT_USER_ERROR(compose_in(source_configs(), {"model.d_model=1.5"}), "expected int",
                    "got float");
  EXPECT_USER_ERROR(compose_in(source_configs(), {"attention.rope=yes"}), "expected bool");
  EXPECT_USER_ERROR(compose_in(source_configs(), {"optim.betas=0.9"}), "expected list");
  EXPECT_USER_ERROR(compose_in(source_configs(), {"model={a: 1}"}), "must be a name or null");
  EXPECT_USER_ERROR(compose_in(source_configs(), {"run=3"}), "expected map");
  EXPECT_USER_ERROR(compose_in(source_configs(), {"model.d_model='5'"}), "got string");
  // ++ is the unchecked escape hatch.
  EXPECT_EQ(compose_in(source_configs(), {"++model.d_model=abc"})["model"]["d_model"].Scalar(),
            "abc");
}

TEST(ValueOverrides, MissingKeySuggestsClosest) {
  EXPECT_USER_ERROR(compose_in(source_configs(), {"model.d_modle=3"}), "'model.d_modle'",
                    "expected under 'model'", "d_model", "did you mean model.d_model?",
                    "+model.d_modle=");
  EXPECT_USER_ERROR(compose_in(source_configs(), {"trainer.max_step=3"}),
                    "did you mean trainer.max_steps?");
  EXPECT_USER_ERROR(compose_in(source_configs(), {"nosuch.key=3"}), "the top level");
  EXPECT_USER_ERROR(compose_in(source_configs(), {"seed.x=3"}), "'seed' is a int");
}

TEST(ValueOverrides, AddForceAddDelete) {
  YAML::Node c = compose_in(source_configs(), {"+extra.deep.key=5", "++seed=7", "++new=x",
                                               "~attention.bias", "~model.mlp=gelu"});
  EXPECT_EQ(c["extra"]["deep"]["key"].as<int>(), 5);
  EXPECT_EQ(c["seed"].as<int>(), 7);
  EXPECT_EQ(c["new"].as<std::string>(), "x");
  EXPECT_FALSE(c["attention"]["bias"].IsDefined());
  EXPECT_FALSE(c["model"]["mlp"].IsDefined());
  EXPECT_USER_ERROR(compose_in(source_configs(), {"+seed=1"}), "already exists", "'1337'",
                    "++seed=");
  EXPECT_USER_ERROR(compose_in(source_configs(), {"~model.mlp=relu"}), "'gelu'", "not 'relu'");
  EXPECT_USER_ERROR(compose_in(source_configs(), {"~model.nope"}), "cannot delete", "'model.nope'");
  EXPECT_USER_ERROR(compose_in(source_configs(), {"+seed.x=1"}), "'seed'", "not a mapping");
}

TEST(ValueOverrides, LaterOverrideWinsAndOrderMatters) {
  YAML::Node c = compose_in(source_configs(), {"seed=1", "seed=2"});
  EXPECT_EQ(c["seed"].as<int>(), 2);
  EXPECT_USER_ERROR(compose_in(source_configs(), {"model.x=1", "+model.x=1"}), "model.x");
  EXPECT_EQ(compose_in(source_configs(), {"+model.x=1", "model.x=2"})["model"]["x"].as<int>(), 2);
}

TEST(ValueOverrides, SweepWithoutMultirunIsAmbiguous) {
  EXPECT_USER_ERROR(compose_in(source_configs(), {"seed=1,2"}), "ambiguous", "--multirun",
                    "seed=[a,b]");
  EXPECT_USER_ERROR(compose_in(source_configs(), {"seed=range(1,3)"}), "ambiguous");
}

TEST(ApplyOverrides, OntoSavedConfig) {
  YAML::Node base = parse_yaml("sample:\n  temperature: 1.0\n  top_k: 0\nname: x\n", "saved");
  YAML::Node out = apply_overrides(base, {"sample.temperature=0.8", "+sample.seed=3"});
  EXPECT_DOUBLE_EQ(out["sample"]["temperature"].as<double>(), 0.8);
  EXPECT_EQ(out["sample"]["seed"].as<int>(), 3);
  EXPECT_DOUBLE_EQ(base["sample"]["temperature"].as<double>(), 1.0);  // base untouched
  EXPECT_USER_ERROR(apply_overrides(base, {"sample.temprature=0.8"}),
                    "did you mean sample.temperature?");
  EXPECT_USER_ERROR(apply_overrides(base, {"sample.top_k=x"}), "expected int");
  EXPECT_USER_ERROR(apply_overrides(base, {"attention=mha"}), "not in the config");
}

}  // namespace
}  // namespace attnlab::config
