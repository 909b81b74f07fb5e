// The groups with typed options (cli/option_groups.h) against their shipped config files: for
// every entry of every converted registry, configs/<group>/<entry>.yaml exists, names the entry
// and holds exactly the struct's defaults (so a default changed on one side only fails here), and
// trainer.grades in configs/trainer/default.yaml equals GradEarlyStopOptions' defaults. Also the
// --defaults docs by group and entry, and that the shipped default config binds.
#include "cli/option_groups.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include "common/config_access.h"
#include "common/error.h"
#include "config/options.h"
#include "losses/loss_set.h"
#include "modules/attention_entry.h"
#include "modules/gpt.h"
#include "probes/loss_probe.h"
#include "tasks/classification/classification_task.h"
#include "tasks/lm/objectives/masked_diffusion.h"
#include "tests/support/train_runs.h"
#include "trainer/finetune.h"
#include "trainer/grad_early_stop.h"
#include "trainer/lr_schedule.h"
#include "trainer/optimizer.h"
#include "trainer/task.h"
#include "trainer/trainer_options.h"

namespace attnlab {
namespace {

YAML::Node shipped_file(const std::string& relative) {
  return YAML::LoadFile(std::string(ATTNLAB_SOURCE_DIR) + "/configs/" + relative);
}

std::string lines(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += item + "\n";
  return out;
}

// For each entry of `registry`: configs/<group>/<entry>.yaml against the entry's options struct.
// Returns how many entries were compared.
template <class Spec>
size_t expect_files_match_defaults(const std::string& group, const Registry<Spec>& registry) {
  size_t compared = 0;
  for (const auto& name : registry.names()) {
    SCOPED_TRACE("configs/" + group + "/" + name + ".yaml");
    const YAML::Node file = shipped_file(group + "/" + name + ".yaml");
    EXPECT_EQ(file["name"].IsDefined() ? file["name"].as<std::string>() : "(no name)", name);
    const config::BindScope scope{group + " '" + name + "'", {"name"}};
    const std::vector<std::string> differences = std::visit(
        [&](const auto& defaults) {
          using Options = std::decay_t<decltype(defaults)>;
          return config::differing_defaults<Options>(file, group, scope);
        },
        registry.get(name).defaults);
    EXPECT_TRUE(differences.empty()) << lines(differences);
    ++compared;
  }
  return compared;
}

TEST(OptionGroups, ShippedOptimizerFilesHoldTheStructDefaults) {
  EXPECT_EQ(expect_files_match_defaults("optim", optimizer_registry()), 3u);
}

// Attention modules keep their options behind the registry (config::ErasedOptions): each
// configs/attention/<module>.yaml names the module, binds strictly, lists every option and holds
// the struct's defaults.
TEST(OptionGroups, ShippedAttentionFilesHoldTheStructDefaults) {
  size_t compared = 0;
  for (const auto& name : attention_registry().names()) {
    SCOPED_TRACE("configs/attention/" + name + ".yaml");
    const YAML::Node file = shipped_file("attention/" + name + ".yaml");
    EXPECT_EQ(file["name"].as<std::string>(), name);
    const config::ErasedOptions& options = attention_registry().get(name).options;
    const std::vector<std::string> differences =
        options.differing_defaults(file, "attention", {"attention '" + name + "'", {"name"}});
    EXPECT_TRUE(differences.empty()) << lines(differences);
    for (const auto& doc : options.docs())
      EXPECT_TRUE(file[doc.key].IsDefined()) << "the file lacks " << doc.key;
    ++compared;
  }
  EXPECT_EQ(compared, 6u);
}

// configs/objective/masked_diffusion.yaml holds the objective's defaults and lists every option.
TEST(OptionGroups, ShippedMaskedDiffusionFileHoldsTheStructDefaults) {
  const YAML::Node file = shipped_file("objective/masked_diffusion.yaml");
  const std::vector<std::string> differences =
      config::differing_defaults<MaskedDiffusionObjectiveOptions>(
          file, "objective", {"objective 'masked_diffusion'", {"name"}});
  EXPECT_TRUE(differences.empty()) << lines(differences);
  for (const auto& doc : config::option_docs<MaskedDiffusionObjectiveOptions>())
    EXPECT_TRUE(file[doc.key].IsDefined()) << "the file lacks " << doc.key;
}

// configs/task/classification.yaml's task group holds the classification task's defaults.
TEST(OptionGroups, ShippedClassificationTaskHoldsTheStructDefaults) {
  const YAML::Node task = shipped_file("task/classification.yaml")["task"];
  const std::vector<std::string> differences =
      config::differing_defaults<ClassificationTaskOptions>(task, "task",
                                                            {"task 'classification'", {"name"}});
  EXPECT_TRUE(differences.empty()) << lines(differences);
  EXPECT_EQ(config::option_docs<ClassificationTaskOptions>().size() + 1, task.size());
}

// The eval group of configs/config.yaml holds EvalOptions' defaults.
TEST(OptionGroups, ShippedEvalGroupHoldsTheStructDefaults) {
  const YAML::Node eval = shipped_file("config.yaml")["eval"];
  const std::vector<std::string> differences =
      config::differing_defaults<EvalOptions>(eval, "eval");
  EXPECT_TRUE(differences.empty()) << lines(differences);
  EXPECT_EQ(config::option_docs<EvalOptions>().size(), eval.size());
}

// configs/probe/default.yaml holds ProbeOptions' defaults and lists every option.
TEST(OptionGroups, ShippedProbeFileHoldsTheStructDefaults) {
  const YAML::Node probe = shipped_file("probe/default.yaml");
  const std::vector<std::string> differences =
      config::differing_defaults<ProbeOptions>(probe, "probe");
  EXPECT_TRUE(differences.empty()) << lines(differences);
  for (const auto& doc : config::option_docs<ProbeOptions>())
    EXPECT_TRUE(probe[doc.key].IsDefined()) << "configs/probe/default.yaml lacks " << doc.key;
}

// configs/finetune/lora.yaml holds LoraOptions' defaults and lists every option; none.yaml has
// the name only; finetune=lora binds, and a bad value is one line naming the key.
TEST(OptionGroups, ShippedFinetuneFilesHoldTheStructDefaults) {
  const YAML::Node lora = shipped_file("finetune/lora.yaml");
  EXPECT_EQ(lora["name"].as<std::string>(), "lora");
  const std::vector<std::string> differences =
      config::differing_defaults<LoraOptions>(lora, "finetune", {"finetune 'lora'", {"name"}});
  EXPECT_TRUE(differences.empty()) << lines(differences);
  for (const auto& doc : config::option_docs<LoraOptions>())
    EXPECT_TRUE(lora[doc.key].IsDefined()) << "configs/finetune/lora.yaml lacks " << doc.key;
  const YAML::Node none = shipped_file("finetune/none.yaml");
  EXPECT_EQ(none["name"].as<std::string>(), "none");
  EXPECT_EQ(none.size(), 1u);

  EXPECT_FALSE(lora_options(attnlab::testing::compose_shipped({})).has_value());
  const auto bound = lora_options(attnlab::testing::compose_shipped({"finetune=lora"}));
  ASSERT_TRUE(bound.has_value());
  EXPECT_EQ(bound->r(), 16);
  EXPECT_NO_THROW(check_option_groups(attnlab::testing::compose_shipped({"finetune=lora"})));
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"finetune=lora", "finetune.r=0"}, "finetune.r: "},
      {{"finetune=lora", "finetune.alpha=-1"}, "finetune.alpha: "},
      {{"finetune=lora", "finetune.dropout=1.0"}, "finetune.dropout: "},
      {{"finetune=lora", "+finetune.rank=8"}, "finetune.rank"},
      {{"+finetune.r=8"}, "finetune.r"},
      {{"finetune.name=dora"}, "finetune.name"}};
  for (const auto& [overrides, expected] : cases) {
    SCOPED_TRACE(overrides.back());
    try {
      lora_options(attnlab::testing::compose_shipped(overrides));
      ADD_FAILURE() << "accepted";
    } catch (const UserError& error) {
      EXPECT_NE(std::string(error.what()).find(expected), std::string::npos) << error.what();
    }
  }
}

// Each loss term's entry in configs/loss/<term>.yaml (the file named after the term) holds the
// term's defaults for the keys it writes.
TEST(OptionGroups, ShippedLossFilesHoldTheTermDefaults) {
  size_t compared = 0;
  for (const auto& name : loss_registry().names()) {
    const YAML::Node file = shipped_file("loss/" + name + ".yaml");
    for (const auto& term : file["terms"]) {
      if (term["name"].as<std::string>() != name) continue;
      SCOPED_TRACE("configs/loss/" + name + ".yaml");
      const std::vector<std::string> differences =
          loss_registry().get(name).options.differing_defaults(
              term, "loss.terms", {"loss term '" + name + "'", {"name", "weight"}});
      EXPECT_TRUE(differences.empty()) << lines(differences);
      ++compared;
    }
  }
  EXPECT_EQ(compared, 4u);
}

// configs/model/gpt.yaml holds ModelOptions' defaults and lists every option; the family files
// (llama, gpt2, ...) set other values but no key the struct lacks.
TEST(OptionGroups, ShippedModelFilesBindAndGptHoldsTheStructDefaults) {
  const config::BindScope scope{"model", {"attention_per_layer"}};
  const YAML::Node gpt = shipped_file("model/gpt.yaml");
  const std::vector<std::string> differences =
      config::differing_defaults<ModelOptions>(gpt, "model", scope);
  EXPECT_TRUE(differences.empty()) << lines(differences);
  for (const auto& doc : config::option_docs<ModelOptions>())
    EXPECT_TRUE(gpt[doc.key].IsDefined()) << "configs/model/gpt.yaml lacks " << doc.key;
  size_t families = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(ATTNLAB_SOURCE_DIR) + "/configs/model")) {
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW(
        config::bind<ModelOptions>(YAML::LoadFile(entry.path().string()), "model", scope));
    ++families;
  }
  EXPECT_GE(families, 5u);
  // A misspelt key is one line naming it, as for every typed group.
  try {
    config::bind<ModelOptions>(YAML::Load("{d_modle: 64}"), "model", scope);
    FAIL() << "an unknown model key must be a UserError";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find("model.d_modle"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("did you mean d_model?"), std::string::npos)
        << error.what();
  }
}

TEST(OptionGroups, ShippedSchedulerFilesHoldTheStructDefaults) {
  EXPECT_EQ(expect_files_match_defaults("scheduler", schedule_registry()), 4u);
}

TEST(OptionGroups, ShippedTrainerGroupHoldsTheStructDefaults) {
  const YAML::Node trainer = shipped_file("trainer/default.yaml");
  ASSERT_TRUE(trainer["grades"].IsMap());
  const std::vector<std::string> differences =
      config::differing_defaults<TrainerOptions>(trainer, "trainer");
  EXPECT_TRUE(differences.empty()) << lines(differences);
  // Every key of the file is an option (differing_defaults binds strictly), and every option is
  // in the file: the file documents each default the struct holds.
  const auto docs = config::option_docs<TrainerOptions>();
  for (const auto& doc : docs)
    EXPECT_TRUE(cfg::find(trainer, doc.key).IsDefined())
        << "configs/trainer/default.yaml lacks " << doc.key;
  EXPECT_EQ(docs.size(), 31u);
}

// The composed default config (and the ones that switch optimizer or schedule) binds, with the
// values the files hold.
TEST(OptionGroups, ShippedConfigsBind) {
  const YAML::Node config = attnlab::testing::compose_shipped({});
  EXPECT_NO_THROW(check_option_groups(config));
  const OptimizerOptions adamw = optimizer_options(config);
  ASSERT_TRUE(std::holds_alternative<AdamWOptions>(adamw));
  EXPECT_DOUBLE_EQ(std::get<AdamWOptions>(adamw).lr(), 1e-3);
  EXPECT_EQ(std::get<AdamWOptions>(adamw).betas(), (std::vector<double>{0.9, 0.95}));
  const ScheduleChoice schedule = schedule_choice(config);
  EXPECT_EQ(schedule.name, "warmup_cosine");
  EXPECT_EQ(schedule.max_steps, config["trainer"]["max_steps"].as<int64_t>());

  const YAML::Node sgd = attnlab::testing::compose_shipped({"optim=sgd", "scheduler=wsd"});
  ASSERT_TRUE(std::holds_alternative<SGDOptions>(optimizer_options(sgd)));
  EXPECT_DOUBLE_EQ(std::get<SGDOptions>(optimizer_options(sgd)).lr(), 0.1);
  EXPECT_EQ(std::get<WsdOptions>(schedule_choice(sgd).options).decay_shape(), "linear");

  const YAML::Node muon = attnlab::testing::compose_shipped({"optim=muon"});
  ASSERT_TRUE(std::holds_alternative<MuonOptions>(optimizer_options(muon)));
  const MuonOptions muon_options = std::get<MuonOptions>(optimizer_options(muon));
  EXPECT_DOUBLE_EQ(muon_options.muon().lr(), 0.02);
  EXPECT_EQ(muon_options.muon().adjust_lr_fn(), "original");
  EXPECT_DOUBLE_EQ(muon_options.adamw().lr(), 1e-3);
}

// A key nothing reads is refused, not carried into config.yaml and ignored: a top-level group of
// its own (`+lora.r=8`), or a key inside a typed group (`+trainer.gradient_checkpointing=true`,
// `+model.d_modle=64`, `+attention.routd_k=2`).
TEST(OptionGroups, KeysNothingReadsAreRefused) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"+lora.r=8"}, "lora: no part of attnlab reads this key"},
      {{"+trainer.gradient_checkpointing=true"}, "trainer.gradient_checkpointing"},
      {{"+model.d_modle=64"}, "model.d_modle"},
      {{"attention=moh", "+attention.routd_k=2"}, "attention.routd_k"},
      {{"model.d_model=9223372036854775808"}, "model.d_model"},
      {{"attention=lssar", "attention.power=0.5"}, "attention.power"}};
  for (const auto& [overrides, expected] : cases) {
    SCOPED_TRACE(overrides.back());
    try {
      check_option_groups(attnlab::testing::compose_shipped(overrides));
      ADD_FAILURE() << "accepted";
    } catch (const UserError& error) {
      EXPECT_NE(std::string(error.what()).find(expected), std::string::npos) << error.what();
    }
  }
}

TEST(OptionGroups, DefaultsDocsByGroupAndEntry) {
  std::vector<std::string> entries;
  for (const auto& docs : option_group_docs("optim")) entries.push_back(docs.entry);
  EXPECT_EQ(entries, (std::vector<std::string>{"adamw", "muon", "sgd"}));
  const std::vector<OptionGroupDocs> sgd = option_group_docs("optim/sgd");
  ASSERT_EQ(sgd.size(), 1u);
  EXPECT_EQ(sgd[0].options[0].key, "lr");
  EXPECT_EQ(sgd[0].options[0].default_value, "0.1");
  EXPECT_EQ(option_group_names(),
            (std::vector<std::string>{"model", "attention", "loss", "objective", "optim",
                                      "scheduler", "trainer", "data", "tokenizer", "dist",
                                      "launcher", "probe", "finetune", "eval", "task"}));
  std::vector<std::string> modules;
  for (const auto& docs : option_group_docs("attention")) modules.push_back(docs.entry);
  EXPECT_EQ(modules, attention_registry().names());
  const std::vector<OptionGroupDocs> moh = option_group_docs("attention/moh");
  ASSERT_EQ(moh.size(), 1u);
  EXPECT_EQ(moh[0].options[0].key, "shared_heads");
  try {
    option_group_docs("optimm");
    FAIL() << "an unknown group must be a UserError";
  } catch (const UserError& error) {
    EXPECT_EQ(std::string(error.what()),
              "unknown group 'optimm' for --defaults; groups with typed options: model, attention, "
              "loss, objective, optim, scheduler, trainer, data, tokenizer, dist, launcher, probe, "
              "finetune, eval, task (did you mean optim?)");
  }
  EXPECT_THROW(option_group_docs("optim/lion"), UserError);
}

}  // namespace
}  // namespace attnlab
