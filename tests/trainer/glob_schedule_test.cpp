// glob_match semantics and LR schedule values at key steps. Expected values are worked out by hand
// from the formulas in lr_schedule.h (e.g. cosine midpoint = min + (1 - min) / 2).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>

#include "common/error.h"
#include "common/glob.h"
#include "trainer/lr_schedule.h"

namespace attnlab {
namespace {

TEST(Glob, WildcardsAndClasses) {
  EXPECT_TRUE(glob_match("blocks.0.*", "blocks.0.attn.q.weight"));
  EXPECT_FALSE(glob_match("blocks.0.*", "blocks.10.attn.q.weight"));
  EXPECT_TRUE(glob_match("blocks.1*", "blocks.10.fc.bias"));  // documented: * crosses dots
  EXPECT_TRUE(glob_match("*.bias", "blocks.3.fc.bias"));
  EXPECT_FALSE(glob_match("*.bias", "blocks.3.fc.bias2"));
  EXPECT_TRUE(glob_match("blocks.?.fc.*", "blocks.7.fc.weight"));
  EXPECT_FALSE(glob_match("blocks.?.fc.*", "blocks.17.fc.weight"));
  EXPECT_TRUE(glob_match("blocks.[0-2].*", "blocks.2.x"));
  EXPECT_FALSE(glob_match("blocks.[0-2].*", "blocks.3.x"));
  EXPECT_TRUE(glob_match("blocks.[!0].*", "blocks.3.x"));
  EXPECT_FALSE(glob_match("blocks.[!0].*", "blocks.0.x"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_FALSE(glob_match("?", ""));
  EXPECT_TRUE(glob_match("*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaab"));
  EXPECT_FALSE(glob_match("*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaa"));
  EXPECT_TRUE(glob_match("embed.weight", "embed.weight"));
  EXPECT_FALSE(glob_match("embed", "embed.weight"));
}

std::unique_ptr<LrSchedule> schedule(const std::string& yaml) {
  return make_schedule(YAML::Load(yaml));
}

TEST(LrSchedule, WarmupCosine) {
  auto s = schedule(
      "scheduler: {name: warmup_cosine, warmup_steps: 10, min_lr_ratio: 0.1}\n"
      "trainer: {max_steps: 110}");
  EXPECT_DOUBLE_EQ(s->lr_factor(0), 0.1);  // (0+1)/10
  EXPECT_DOUBLE_EQ(s->lr_factor(4), 0.5);
  EXPECT_DOUBLE_EQ(s->lr_factor(9), 1.0);
  EXPECT_DOUBLE_EQ(s->lr_factor(10), 1.0);
  EXPECT_NEAR(s->lr_factor(60), 0.55, 1e-12);  // halfway: 0.1 + 0.9 * 0.5
  EXPECT_NEAR(s->lr_factor(35), 0.1 + 0.45 * (1 + std::cos(M_PI / 4)), 1e-12);
  EXPECT_NEAR(s->lr_factor(110), 0.1, 1e-12);
  EXPECT_NEAR(s->lr_factor(500), 0.1, 1e-12);
  EXPECT_NE(s->describe().find("warmup_cosine"), std::string::npos);
}

// Without a scheduler group: warmup_cosine with DecayOptions' defaults (configs/scheduler/
// warmup_cosine.yaml's values): 100 warmup steps, floor 0.1.
TEST(LrSchedule, DefaultIsWarmupCosine) {
  auto s = schedule("trainer: {max_steps: 1100}");
  EXPECT_EQ(s->name(), "warmup_cosine");
  EXPECT_EQ(s->warmup_steps(), 100);
  EXPECT_DOUBLE_EQ(s->lr_factor(0), 0.01);
  EXPECT_DOUBLE_EQ(s->lr_factor(99), 1.0);
  EXPECT_NEAR(s->lr_factor(600), 0.55, 1e-12);
  EXPECT_EQ(s->describe(), "warmup_cosine warmup_steps=100 max_steps=1100 min_lr_ratio=0.1");
}

TEST(LrSchedule, ConstantAndLinear) {
  auto c = schedule("scheduler: {name: constant, warmup_steps: 4}\ntrainer: {max_steps: 100}");
  EXPECT_DOUBLE_EQ(c->lr_factor(1), 0.5);
  EXPECT_DOUBLE_EQ(c->lr_factor(4), 1.0);
  EXPECT_DOUBLE_EQ(c->lr_factor(1000), 1.0);
  auto l = schedule(
      "scheduler: {name: linear, warmup_steps: 10, min_lr_ratio: 0.0}\n"
      "trainer: {max_steps: 110}");
  EXPECT_DOUBLE_EQ(l->lr_factor(10), 1.0);
  EXPECT_NEAR(l->lr_factor(35), 0.75, 1e-12);
  EXPECT_NEAR(l->lr_factor(110), 0.0, 1e-12);
}

TEST(LrSchedule, WarmupStableDecay) {
  auto lin = schedule(
      "scheduler: {name: wsd, warmup_steps: 10, min_lr_ratio: 0.1, "
      "decay_fraction: 0.2}\ntrainer: {max_steps: 100}");
  EXPECT_DOUBLE_EQ(lin->lr_factor(50), 1.0);
  EXPECT_DOUBLE_EQ(lin->lr_factor(80), 1.0);  // decay starts at 100 - 20
  EXPECT_NEAR(lin->lr_factor(85), 1.0 - 0.9 * 0.25, 1e-12);
  EXPECT_NEAR(lin->lr_factor(90), 0.55, 1e-12);
  EXPECT_NEAR(lin->lr_factor(100), 0.1, 1e-12);
  auto cos = schedule(
      "scheduler: {name: wsd, warmup_steps: 10, min_lr_ratio: 0.1, "
      "decay_fraction: 0.2, decay_shape: cosine}\nscheduler_unused: 1\n"
      "trainer: {max_steps: 100}");
  EXPECT_NEAR(cos->lr_factor(85), 0.1 + 0.45 * (1 + std::cos(M_PI / 4)), 1e-12);
  EXPECT_NEAR(cos->lr_factor(90), 0.55, 1e-12);
}

// A warmup longer than the run is clamped to the run (with a warning), not refused.
TEST(LrSchedule, WarmupLongerThanTheRunIsClampedToIt) {
  auto clamped =
      schedule("scheduler: {name: warmup_cosine, warmup_steps: 20}\ntrainer: {max_steps: 10}");
  EXPECT_NEAR(clamped->lr_factor(0), 0.1, 1e-12);  // 1/10, not 1/20
  EXPECT_NEAR(clamped->lr_factor(9), 1.0, 1e-12);
}

TEST(LrSchedule, BadConfigIsUserError) {
  try {
    schedule("scheduler: {name: cosine_typo}\ntrainer: {max_steps: 10}");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("warmup_cosine"), std::string::npos);  // lists names
  }
  EXPECT_THROW(schedule("scheduler: {min_lr_ratio: 1.5}\ntrainer: {max_steps: 10}"), UserError);
  EXPECT_THROW(schedule("scheduler: {warmup_steps: -1}\ntrainer: {max_steps: 10}"), UserError);
  EXPECT_THROW(schedule("scheduler: {name: wsd, decay_shape: exp}\ntrainer: {max_steps: 10}"),
               UserError);
  EXPECT_THROW(schedule("scheduler: {name: constant}"), UserError);  // no max_steps
  // Each schedule takes its own options only: min_lr_ratio means nothing to constant.
  try {
    schedule("scheduler: {name: constant, min_lr_ratio: 0.1}\ntrainer: {max_steps: 10}");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              "scheduler.min_lr_ratio: scheduler 'constant' has no option 'min_lr_ratio'; its "
              "options: warmup_steps, max_steps, extend");
  }
  EXPECT_EQ(schedule("scheduler: {name: constant, max_steps: 8}")->max_steps(), 8);
}

// scheduler.extend: a run that finished its 4-step schedule resumes with trainer.max_steps=8.
ScheduleChoice extended_choice(const std::string& extend,
                               const std::string& name = "warmup_cosine") {
  return schedule_choice(YAML::Load("trainer: {max_steps: 8}\nscheduler: {name: " + name +
                                    ", warmup_steps: 2, extend: " + extend + "}"));
}

double factor_of(const std::string& yaml, int64_t step) {
  return make_schedule(YAML::Load(yaml))->lr_factor(step);
}

TEST(LrSchedule, ExtendingAFinishedRunFollowsSchedulerExtend) {
  const std::string longer = "trainer: {max_steps: 8}\nscheduler: {warmup_steps: 2}";
  const std::string finished = "trainer: {max_steps: 4}\nscheduler: {warmup_steps: 2}";
  const std::string restart = "trainer: {max_steps: 4}\nscheduler: {warmup_steps: 2}";
  const ScheduleExtension recompute(extended_choice("recompute"), 4);
  const ScheduleExtension hold(extended_choice("hold"), 4);
  const ScheduleExtension again(extended_choice("restart"), 4);
  for (int64_t step = 0; step < 8; ++step) {
    EXPECT_DOUBLE_EQ(recompute.lr_factor(step), factor_of(longer, step)) << step;
    if (step < 4) {  // the steps before the extension are the longer schedule's for every choice
      EXPECT_DOUBLE_EQ(hold.lr_factor(step), factor_of(longer, step));
      continue;
    }
    EXPECT_DOUBLE_EQ(hold.lr_factor(step), 0.1) << step;  // the finished run's min_lr_ratio
    EXPECT_DOUBLE_EQ(again.lr_factor(step), factor_of(restart, step - 4)) << step;
  }
  EXPECT_DOUBLE_EQ(factor_of(finished, 4), 0.1);
  EXPECT_DOUBLE_EQ(again.lr_factor(4), 0.5);  // warmup again: (0 + 1) / 2
  EXPECT_GT(recompute.lr_factor(4), 0.5);     // the recomputed cosine rises above the old floor
  EXPECT_NE(hold.describe().find("extend=hold"), std::string::npos) << hold.describe();
  EXPECT_NE(recompute.describe().find("finished its warmup_cosine schedule at step 4"),
            std::string::npos)
      << recompute.describe();
}

TEST(LrSchedule, TheExtensionIsFoundFromTheCheckpointAndKept) {
  std::map<std::string, std::string> extra;
  const std::string recorded = "warmup_cosine warmup_steps=2 max_steps=4 min_lr_ratio=0.1";
  // Stopped before the end of its schedule: no extension, the schedule is recomputed as usual.
  EXPECT_FALSE(resume_schedule_extension(extended_choice("hold"), 3, recorded, extra));
  EXPECT_TRUE(extra.empty());
  // Finished at step 4, now 8 steps: an extension from 4, recorded for later resumes.
  auto found = resume_schedule_extension(extended_choice("hold"), 4, recorded, extra);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->finished_at(), 4);
  EXPECT_EQ(extra.at("schedule_extended_from"), "4");
  // A later resume of the extended run (its checkpoint now records max_steps=8) keeps it.
  const std::string later = "warmup_cosine warmup_steps=2 max_steps=8 min_lr_ratio=0.1";
  found = resume_schedule_extension(extended_choice("hold"), 6, later, extra);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->finished_at(), 4);
  EXPECT_DOUBLE_EQ(found->lr_factor(6), 0.1);
  // The extended run finished too (8 steps) and trains on to 10: a new extension from 8.
  const ScheduleChoice ten = schedule_choice(YAML::Load(
      "trainer: {max_steps: 10}\nscheduler: {name: warmup_cosine, warmup_steps: 2, extend: hold}"));
  found = resume_schedule_extension(ten, 8, later, extra);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->finished_at(), 8);
  EXPECT_EQ(extra.at("schedule_extended_from"), "8");
  // Without the record, the same later checkpoint is an ordinary resume.
  std::map<std::string, std::string> none;
  EXPECT_FALSE(resume_schedule_extension(extended_choice("hold"), 6, later, none));
  // A bad choice is one line naming the key.
  EXPECT_THROW(extended_choice("again"), UserError);
}

}  // namespace
}  // namespace attnlab
