// The config groups that bind into typed options (config/options.h): model, attention (per
// module), loss (per term of loss.terms), optim (per optimizer), scheduler (per schedule), trainer
// (with trainer.grades), data (per kind), tokenizer (per tokenizer), dist, launcher (per launcher)
// and probe. One place lists them,
// so `attnlab config --defaults [group]` prints every option with its type, default and meaning,
// and `attnlab config` and `attnlab train --dry-run` bind them all, turning a bad key or value
// into the same one-line UserError that training would give, before anything runs. It sits in
// cli/ because it gathers the groups of every layer below.
#pragma once

#include <string>
#include <vector>

#include "config/option_schema.h"

namespace attnlab {

// One options struct as --defaults prints it: "optim" / "adamw", "trainer" / "".
struct OptionGroupDocs {
  std::string group;  // the config group (dotted key)
  std::string entry;  // the registry entry the group's `name` picks; empty for a plain group
  std::vector<config::OptionDoc> options;
};

// Every group with typed options, in the order above (entries in registry order).
std::vector<OptionGroupDocs> option_group_docs();
// The group names of option_group_docs() ("model", "attention", "optim", ...).
std::vector<std::string> option_group_names();

// The docs of `group` (every entry), or of one entry as "group/entry" ("optim/sgd"); UserError
// listing the groups for an unknown one.
std::vector<OptionGroupDocs> option_group_docs(const std::string& group);

// Binds every typed group of the composed `config`; UserError naming the key on the first
// problem. Defined for YAML::Node.
template <class ConfigTree>
void check_option_groups(const ConfigTree& config);

}  // namespace attnlab
