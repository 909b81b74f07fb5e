// The pieces of the non-finite guard below the training loop: save_checkpoint refuses a model or
// optimizer state with a NaN/Inf and leaves the existing checkpoints and `latest` as they were
// (so keep_last can never delete the newest finite checkpoint); first_nonfinite names the first
// bad tensor; the spike detector's z-scores and its text round trip (bitwise resume).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>

#include "common/error.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/checkpoint.h"
#include "trainer/nonfinite_guard.h"
#include "trainer/optimizer.h"
#include "trainer/trainer_options.h"

namespace attnlab {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;
using testing::TinyModel;

const YAML::Node kConfig = YAML::Load("optim: {lr: 0.01}");

void one_step(TinyModel& model, OptimizerSetup& setup) {
  setup.optimizer->zero_grad();
  model->forward(torch::randint(0, 10, {6})).backward();
  setup.optimizer->step();
}

TEST(NonFiniteCheckpoint, SaveRefusesNonFiniteWeightsAndKeepsTheNewestFiniteCheckpoint) {
  TempDir dir;
  torch::manual_seed(0);
  TinyModel model;
  OptimizerSetup setup = make_optimizer(*model, kConfig);
  SaveOptions options;
  options.keep_last = 1;
  for (int64_t step = 1; step <= 2; ++step) {
    one_step(model, setup);
    TrainState state;
    state.step = step;
    save_checkpoint(dir.str(), *model, setup.optimizer.get(), state, "a: 1\n", options);
  }
  const std::string newest = resolve_checkpoint(dir.str());
  ASSERT_EQ(fs::path(newest).filename(), "step_00000002.ckpt");

  {
    torch::NoGradGuard no_grad;
    model->blocks[1]->as<testing::TinyBlockImpl>()->fc->weight[0][0].fill_(NAN);
  }
  TrainState state;
  state.step = 3;
  try {
    save_checkpoint(dir.str(), *model, setup.optimizer.get(), state, "a: 1\n", options);
    FAIL() << "a NaN weight was saved";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find("blocks.1.fc.weight"), std::string::npos)
        << error.what();
  }
  EXPECT_FALSE(fs::exists(fs::path(checkpoint_dir(dir.str())) / "step_00000003.ckpt"));
  EXPECT_EQ(resolve_checkpoint(dir.str()), newest);
  EXPECT_TRUE(fs::exists(newest));
}

TEST(NonFiniteCheckpoint, SaveRefusesANonFiniteOptimizerMoment) {
  TempDir dir;
  torch::manual_seed(0);
  TinyModel model;
  OptimizerSetup setup = make_optimizer(*model, kConfig);
  one_step(model, setup);
  NamedTensorList moments = named_optimizer_state(*model, *setup.optimizer);
  ASSERT_FALSE(moments.empty());
  const auto& [name, tensor] = moments.back();
  tensor.view(-1)[0].fill_(INFINITY);
  TrainState state;
  state.step = 1;
  try {
    save_checkpoint(dir.str(), *model, setup.optimizer.get(), state, "a: 1\n");
    FAIL() << "an Inf optimizer moment was saved";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find(name), std::string::npos) << error.what();
  }
  EXPECT_TRUE(list_checkpoints(dir.str()).empty());
}

TEST(NonFiniteGuardParts, FirstNonFiniteNamesTheTensor) {
  NamedTensorList tensors = {{"a", torch::ones({3})},
                             {"ints", torch::arange(4)},
                             {"b", torch::tensor({1.0f, INFINITY})},
                             {"c", torch::tensor({NAN})}};
  EXPECT_EQ(first_nonfinite(tensors), "b");
  // Huge but finite float32 values sum to a finite float64: no false alarm.
  EXPECT_EQ(first_nonfinite({{"big", torch::full({1000}, 3.0e38f)}}), "");
  EXPECT_EQ(first_nonfinite({}), "");
}

TEST(NonFiniteGuardParts, SpikeDetectorZScoresAndRoundTrip) {
  SpikeDetector detector(4);
  for (double v : {1.0, 2.0, 1.0, 2.0}) {
    EXPECT_EQ(detector.zscore(100.0), 0.0);  // not full yet
    detector.push(v);
  }
  EXPECT_DOUBLE_EQ(detector.zscore(1.5), 0.0);
  EXPECT_DOUBLE_EQ(detector.zscore(4.5), 6.0);  // mean 1.5, std 0.5
  detector.push(NAN);                           // never enters the window
  EXPECT_EQ(detector.size(), 4u);
  detector.push(0.1 + 0.2);  // a value whose text form needs 17 digits
  SpikeDetector copy(4);
  copy.restore(detector.serialize());
  EXPECT_EQ(copy.serialize(), detector.serialize());
  EXPECT_EQ(copy.zscore(7.0), detector.zscore(7.0));
  SpikeDetector constant(2);
  constant.push(3.0);
  constant.push(3.0);
  EXPECT_EQ(constant.zscore(30.0), 0.0);  // no spread, no z-score
}

TEST(NonFiniteGuardParts, OptionsRejectBadValues) {
  auto options = [](const std::string& yaml) {
    return TrainerOptions::from_config(YAML::Load(yaml)).nonfinite();
  };
  EXPECT_EQ(options("trainer: {on_nonfinite: rollback}").policy(), NonFinitePolicy::kRollback);
  EXPECT_EQ(options("trainer: {}").policy(), NonFinitePolicy::kHalt);
  EXPECT_THROW(options("trainer: {on_nonfinite: retry}"), UserError);
  EXPECT_THROW(options("trainer: {rollback_lr_factor: 0}"), UserError);
  EXPECT_THROW(options("trainer: {max_rollbacks: -1}"), UserError);
  EXPECT_THROW(options("trainer: {max_consecutive_skips: 0}"), UserError);
  EXPECT_THROW(options("trainer: {spike_zscore: -1}"), UserError);
}

}  // namespace
}  // namespace attnlab
