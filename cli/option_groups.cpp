// The table of config groups with typed options (option_groups.h): each registry's entries with
// their option docs, and one call binding them all.
#include "cli/option_groups.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <type_traits>
#include <utility>

#include "common/config_access.h"
#include "common/error.h"
#include "common/suggestions.h"
#include "config/options.h"
#include "data/data_options.h"
#include "data/tokenizers/tokenizer.h"
#include "distributed/distributed.h"
#include "launch/launcher_options.h"
#include "losses/loss_set.h"
#include "modules/attention_entry.h"
#include "modules/gpt.h"
#include "probes/loss_probe.h"
#include "tasks/classification/classification_task.h"
#include "tasks/lm/objectives/masked_diffusion.h"
#include "trainer/finetune.h"
#include "trainer/grad_early_stop.h"
#include "trainer/lr_schedule.h"
#include "trainer/objective.h"
#include "trainer/optimizer.h"
#include "trainer/task.h"
#include "trainer/trainer_options.h"

namespace attnlab {
namespace {

// Whether a registry's specs hold their options type-erased (config::ErasedOptions: attention,
// loss terms, objectives) rather than as the defaults of a variant (optimizers, schedules, ...).
template <class Spec, class = void>
struct holds_erased_options : std::false_type {};
template <class Spec>
struct holds_erased_options<Spec, std::void_t<decltype(std::declval<const Spec&>().options.docs)>>
    : std::true_type {};

// The docs of every entry of a registry, whichever way its specs hold their options.
template <class Spec>
void add_registry(std::vector<OptionGroupDocs>& out, const std::string& group,
                  const Registry<Spec>& registry) {
  for (const auto& name : registry.names()) {
    const Spec& spec = registry.get(name);
    std::vector<config::OptionDoc> docs;
    if constexpr (holds_erased_options<Spec>::value)
      docs = spec.options.docs();
    else
      docs = std::visit([](const auto& defaults) { return config::option_docs(defaults); },
                        spec.defaults);
    out.push_back({group, name, docs});
  }
}

}  // namespace

std::vector<OptionGroupDocs> option_group_docs() {
  std::vector<OptionGroupDocs> out;
  out.push_back({"model", "", config::option_docs<ModelOptions>()});
  add_registry(out, "attention", attention_registry());
  add_registry(out, "loss", loss_registry());
  add_registry(out, "objective", objective_registry());
  add_registry(out, "optim", optimizer_registry());
  add_registry(out, "scheduler", schedule_registry());
  out.push_back({"trainer", "", config::option_docs<TrainerOptions>()});
  add_registry(out, "data", data_kind_registry());
  add_registry(out, "tokenizer", tokenizer_registry());
  out.push_back({"dist", "", config::option_docs<DistOptions>()});
  add_registry(out, "launcher", launcher_registry());
  out.push_back({"probe", "", config::option_docs<ProbeOptions>()});
  out.push_back({"finetune", "none", config::option_docs<NoFinetuneOptions>()});
  out.push_back({"finetune", "lora", config::option_docs<LoraOptions>()});
  out.push_back({"eval", "", config::option_docs<EvalOptions>()});
  out.push_back({"task", "classification", config::option_docs<ClassificationTaskOptions>()});
  return out;
}

std::vector<std::string> option_group_names() {
  std::vector<std::string> names;
  for (const auto& docs : option_group_docs())
    if (names.empty() || names.back() != docs.group) names.push_back(docs.group);
  return names;
}

std::vector<OptionGroupDocs> option_group_docs(const std::string& group) {
  const size_t slash = group.find('/');
  const std::string name = group.substr(0, slash);
  const std::string entry = slash == std::string::npos ? "" : group.substr(slash + 1);
  std::vector<OptionGroupDocs> out;
  std::vector<std::string> entries;
  for (auto& docs : option_group_docs()) {
    if (docs.group != name) continue;
    entries.push_back(docs.entry);
    if (entry.empty() || docs.entry == entry) out.push_back(std::move(docs));
  }
  const std::vector<std::string> groups = option_group_names();
  check_user(!entries.empty(), "unknown group '" + name + "' for --defaults; groups with typed " +
                                   "options: " + join_names(groups) + did_you_mean(name, groups));
  check_user(!out.empty(), "unknown entry '" + entry + "' of group '" + name + "'; its entries: " +
                               join_names(entries) + did_you_mean(entry, entries));
  return out;
}

namespace {

// The top-level keys of a composed config that some part of attnlab reads: the groups of
// configs/config.yaml's defaults list and its own keys. Anything else (`+lora.r=8`) would be
// carried into config.yaml and ignored.
const std::vector<std::string>& read_top_level_keys() {
  static const std::vector<std::string> keys = {
      "model",  "attention",      "loss",    "objective", "tokenizer", "data",
      "optim",  "scheduler",      "trainer", "launcher",  "dist",      "probe",
      "task",   "name",           "seed",    "run",       "init_from", "init_strict",
      "freeze", "lr_multipliers", "sweep",   "eval",      "finetune"};
  return keys;
}

void check_top_level_keys(const YAML::Node& config) {
  if (!config.IsMap()) return;
  const std::vector<std::string>& known = read_top_level_keys();
  for (const auto& entry : config) {
    const std::string key = entry.first.Scalar();
    check_user(std::find(known.begin(), known.end(), key) != known.end(),
               key +
                   ": no part of attnlab reads this key (it would be ignored); the top-level "
                   "keys are " +
                   join_names(known) + did_you_mean(key, known));
  }
}

}  // namespace

template <class ConfigTree>
void check_option_groups(const ConfigTree& config) {
  check_top_level_keys(config);
  // model, attention and per-layer entries; then every loss term of loss.terms
  const GptOptions model = gpt_options_from_config(config, /*vocab_size=*/1);
  LossSet(config, model.n_layers);
  make_objective(config);
  optimizer_options(config);
  schedule_options(config);  // not the run length: a config tree of one's own may have none
  TrainerOptions::from_config(config);
  data_options(config);
  tokenizer_options(config);
  dist_options_from_config(config);
  launcher_options(config);
  probe_options(config);
  const bool lora = lora_options(config).has_value();
  config::bind<EvalOptions>(cfg::find(config, "eval"), "eval");
  if (cfg::get<std::string>(config, "task.name") == "classification") {
    classification_task_options(config);
    check_user(!lora,
               "finetune.name: LoRA adapters are added to task=lm models only so far; "
               "use finetune=none with task=classification");
  }
}

template void check_option_groups(const YAML::Node&);

}  // namespace attnlab
