// Parser for Hydra's command-line override grammar:
//   key=value   set an existing key (or select a group option: attention=mha, experiment=null)
//   +key=value  add a key that must not exist yet (or append a config group: +experiment=tiny)
//   ++key=value add or set
//   ~key / ~key=value  delete (only when the value matches)
// Values: ints, floats (3e-4), bools, null, 'quoted'/"quoted" and unquoted strings, lists [1,2],
// maps {a: 1, b: x}, interpolations kept verbatim (${model.d_model}, ${now:%H-%M}). Sweeps for
// -m: a=1,2,3, a=range(0,10,2) (ints or floats), a=choice(x,y), group=glob(*) / glob(m*), and
// a=zip(x,y) b=zip(1,2): every zip() override is one axis together (a=x b=1, then a=y b=2).
//
// Escapes (the same quoted and unquoted): \\ is one backslash; \' and \" are the quote; in
// unquoted values a backslash before punctuation (\, \[ \] \{ \} \( \) \: \= \space) is that
// character. A backslash before a letter or digit (\n \t \r \s ...) is kept as typed, both
// characters, so 'data.separator=\n\n' and 'data.separator="\n\n"' both give the text \n\n,
// which data.separator turns into two newlines (data/corpora/user_files.cpp: \n \t \r \\), as it
// does for separator: '\n\n' in a YAML file. \${ keeps an interpolation literal.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace attnlab::config {

enum class OverrideOp { kSet, kAdd, kForceAdd, kDelete };

struct SweepSpec {
  enum class Kind { kNone, kChoices, kGlob };
  Kind kind = Kind::kNone;
  std::string function;              // "range", "choice", "zip", "glob", or "" for a,b,c
  std::vector<std::string> items;    // kChoices: each choice's value text (a,b,c / range / choice)
  std::vector<std::string> include;  // kGlob: fnmatch patterns over the group's options
  std::vector<std::string> exclude;  // kGlob
};

struct Override {
  std::string text;  // the override as typed
  OverrideOp op = OverrideOp::kSet;
  std::string key;         // dotted key or group path (model, db/mysql)
  bool has_value = false;  // false only for `~key`
  std::string value_text;  // text after '='
  YAML::Node value;        // parsed value (valid when has_value and not a sweep)
  SweepSpec sweep;

  bool is_sweep() const { return sweep.kind != SweepSpec::Kind::kNone; }
};

// Parses one override; UserError naming the override on any syntax error. Sweep syntax is parsed
// here; callers that do not run a sweep reject it with reject_sweep().
Override parse_override(const std::string& text);

// Throws the Hydra-style "ambiguous value / use --multirun" UserError when `o` is a sweep.
void reject_sweep(const Override& o);

// Parses a single override value (no sweep allowed), e.g. for tests: "[1, {a: x}]".
YAML::Node parse_override_value(const std::string& text);

// Prefix of an override op as typed ("", "+", "++", "~").
std::string op_prefix(OverrideOp op);

}  // namespace attnlab::config
