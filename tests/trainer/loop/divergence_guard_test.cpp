// DivergenceGuard's policy without a training run: what halt, skip and rollback decide for a
// fault, the spike detector's drop rule, the once-only injection hook, and that its counters and
// windows survive a checkpoint (store/restore) and a rollback (counters kept, windows reloaded).
// The end-to-end behaviour of each policy is in nonfinite_guard_test.cpp. Also the TensorBoard
// HParams read from overrides with the override grammar.
#include "trainer/divergence_guard.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.h"
#include "trainer/metrics_logger.h"

using namespace attnlab;

namespace {

struct Recorder {
  std::vector<std::string> lines;
  DivergenceGuard::Warn warn() {
    return [this](const std::string& line) { lines.push_back(line); };
  }
};

NonFiniteOptions options_with(const std::string& policy) {
  NonFiniteOptions o;
  o.on_nonfinite(policy);
  return o;
}

std::string empty_run_dir() {
  auto dir = std::filesystem::path(ATTNLAB_BINARY_DIR) / "test_train_tmp" / "divergence_guard";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace

TEST(DivergenceGuard, HaltNamesTheStepTheFaultAndThatNoCheckpointExists) {
  Recorder out;
  DivergenceGuard guard(options_with("halt"), empty_run_dir(), out.warn());
  try {
    guard.handle(7, "the loss is nan", false);
    FAIL() << "halt must throw";
  } catch (const UserError& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find("training diverged at step 7: the loss is nan"), std::string::npos);
    EXPECT_NE(what.find("last good checkpoint: none"), std::string::npos);
  }
}

TEST(DivergenceGuard, SkipDropsUpToMaxConsecutiveSkipsThenHalts) {
  NonFiniteOptions o = options_with("skip");
  o.max_consecutive_skips(2);
  Recorder out;
  DivergenceGuard guard(o, empty_run_dir(), out.warn());
  EXPECT_EQ(guard.handle(1, "f", false), DivergenceGuard::Action::kSkip);
  EXPECT_EQ(guard.handle(1, "f", false), DivergenceGuard::Action::kSkip);
  EXPECT_THROW(guard.handle(1, "f", false), UserError);
  ASSERT_EQ(out.lines.size(), 2u);
  EXPECT_NE(out.lines[1].find("batch dropped (2 so far)"), std::string::npos);
  // An accepted step resets the run of skips; an applied update cannot be skipped.
  guard.accept(1.0, 1.0);
  EXPECT_EQ(guard.handle(2, "f", false), DivergenceGuard::Action::kSkip);
  EXPECT_THROW(guard.handle(3, "f", /*update_applied=*/true), UserError);
  std::map<std::string, double> logged;
  guard.add_metrics(logged);
  EXPECT_EQ(logged.at("nonfinite/skipped_batches"), 3.0);
}

TEST(DivergenceGuard, RollbackKeepsCountersReloadsWindowsAndLowersTheLr) {
  NonFiniteOptions o = options_with("rollback");
  o.max_rollbacks(1);
  o.rollback_lr_factor(0.25);
  o.spike_window(4);
  Recorder out;
  DivergenceGuard guard(o, empty_run_dir(), out.warn());
  EXPECT_TRUE(guard.needs_checkpoint_before_training());
  TrainState checkpointed;
  guard.accept(2.0, 1.0);
  guard.store(checkpointed);  // the window holds one value
  guard.accept(3.0, 1.0);
  EXPECT_EQ(guard.handle(5, "f", true), DivergenceGuard::Action::kRollback);
  checkpointed.step = 3;
  guard.rolled_back(5, "f", "ckpt", checkpointed);
  EXPECT_DOUBLE_EQ(guard.lr_scale(), 0.25);
  EXPECT_NE(
      out.lines.back().find("rolled back to ckpt (step 3), LR scale now 0.25, rollback 1 of 1"),
      std::string::npos);
  TrainState after;
  guard.store(after);
  EXPECT_EQ(after.extra.at("guard.loss_window"), checkpointed.extra.at("guard.loss_window"));
  EXPECT_EQ(after.extra.at("guard.rollbacks"), "1");
  EXPECT_THROW(guard.handle(6, "f", true), UserError);  // max_rollbacks reached

  // A resumed run restores the counters and the LR scale bit for bit.
  DivergenceGuard resumed(o, empty_run_dir(), out.warn());
  resumed.restore(after);
  EXPECT_EQ(resumed.lr_scale(), guard.lr_scale());
  TrainState again;
  resumed.store(again);
  EXPECT_EQ(again.extra, after.extra);
}

TEST(DivergenceGuard, SpikesAreDroppedOnlyWithSpikeSkipAndWithinTheSkipBudget) {
  NonFiniteOptions o;
  o.spike_window(3);
  o.spike_zscore(2.0);
  o.spike_skip(true);
  o.max_consecutive_skips(1);
  Recorder out;
  DivergenceGuard guard(o, empty_run_dir(), out.warn());
  for (double v : {1.0, 1.1, 0.9}) {
    EXPECT_FALSE(guard.drop_spike(1, v, 1.0));
    guard.accept(v, 1.0);
  }
  EXPECT_TRUE(guard.drop_spike(4, 100.0, 1.0));
  EXPECT_FALSE(
      guard.drop_spike(4, 100.0, 1.0));  // budget of consecutive skips used up: logged only
  EXPECT_EQ(out.lines.size(), 2u);
  std::map<std::string, double> logged;
  guard.add_metrics(logged);
  EXPECT_EQ(logged.at("spikes/detected"), 2.0);
  EXPECT_EQ(logged.at("spikes/skipped_batches"), 1.0);
}

TEST(DivergenceGuard, InjectionFiresOnceAtItsStep) {
  NonFiniteOptions o;
  o.inject_nonfinite_at_step(3);
  DivergenceGuard guard(o, empty_run_dir(), nullptr);
  EXPECT_FALSE(guard.take_injection(2));
  EXPECT_TRUE(guard.take_injection(3));
  EXPECT_FALSE(guard.take_injection(3));
}

TEST(DivergenceGuard, NonFiniteLossNamesTheTermBeforeTheTotal) {
  const double nan = std::nan("");
  EXPECT_EQ(nonfinite_loss({{"train/loss", 1.0}, {"train/stat/x", nan}}), "");
  EXPECT_EQ(nonfinite_loss({{"train/loss", nan}, {"train/loss/ce", nan}}),
            "loss term 'loss/ce' is nan");
  EXPECT_EQ(nonfinite_loss({{"train/loss", nan}}), "the loss is nan");
}

TEST(HParams, OverridesAreReadWithTheOverrideGrammar) {
  const auto hparams = hparams_from_overrides({"optim.lr=3e-4", "attention=moh", "+model.tie=true",
                                               "name='quoted run'", "model.sizes=[1, 2]",
                                               "~loss.terms", "not an override"});
  EXPECT_EQ(hparams.at("optim.lr").number_value(), 3e-4);
  EXPECT_EQ(hparams.at("attention").string_value(), "moh");
  EXPECT_EQ(hparams.at("model.tie").bool_value(), true);
  EXPECT_EQ(hparams.at("name").string_value(), "quoted run");
  EXPECT_EQ(hparams.at("model.sizes").string_value(), "[1, 2]");
  EXPECT_EQ(hparams.count("loss.terms"), 0u);
  EXPECT_EQ(hparams.size(), 5u);
}
