// The groups with typed options (trainer/option_groups.h) against their shipped config files: for
// every entry of every converted registry, configs/<group>/<entry>.yaml exists, names the entry
// and holds exactly the struct's defaults (so a default changed on one side only fails here), and
// trainer.grades in configs/trainer/default.yaml equals GradEarlyStopOptions' defaults. Also the
// --defaults docs by group and entry, and that the shipped default config binds.
#include "trainer/option_groups.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <variant>
#include <vector>

#include "common/config_access.h"
#include "common/error.h"
#include "config/options.h"
#include "tests/support/train_runs.h"
#include "trainer/grad_early_stop.h"
#include "trainer/lr_schedule.h"
#include "trainer/optimizer.h"
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

TEST(OptionGroups, DefaultsDocsByGroupAndEntry) {
  std::vector<std::string> entries;
  for (const auto& docs : option_group_docs("optim")) entries.push_back(docs.entry);
  EXPECT_EQ(entries, (std::vector<std::string>{"adamw", "muon", "sgd"}));
  const std::vector<OptionGroupDocs> sgd = option_group_docs("optim/sgd");
  ASSERT_EQ(sgd.size(), 1u);
  EXPECT_EQ(sgd[0].options[0].key, "lr");
  EXPECT_EQ(sgd[0].options[0].default_value, "0.1");
  EXPECT_EQ(option_group_names(), (std::vector<std::string>{"optim", "scheduler", "trainer"}));
  try {
    option_group_docs("optimm");
    FAIL() << "an unknown group must be a UserError";
  } catch (const UserError& error) {
    EXPECT_EQ(std::string(error.what()),
              "unknown group 'optimm' for --defaults; groups with typed options: optim, "
              "scheduler, trainer (did you mean optim?)");
  }
  EXPECT_THROW(option_group_docs("optim/lion"), UserError);
}

}  // namespace
}  // namespace attnlab
