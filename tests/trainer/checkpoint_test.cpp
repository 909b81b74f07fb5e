// Checkpoints: bitwise round trip (model, AdamW moments/steps, RNG, metadata), crash leftovers,
// truncation/corruption detection with fallback, keep-last-K retention and best.ckpt, and
// checkpoints written by the LibTorch 1.13 build (tests/fixtures/libtorch113_run).
#include "trainer/checkpoint.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "io/weights_io.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/optimizer.h"

namespace attnlab {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;
using testing::TinyModel;

const YAML::Node kConfig = YAML::Load("optim: {lr: 0.01}\nlr_multipliers: {'blocks.1.*': 0.5}");

void train_steps(TinyModel& model, OptimizerSetup& setup, int steps) {
  for (int i = 0; i < steps; ++i) {
    setup.optimizer->zero_grad();
    auto tokens = torch::randint(0, 10, {6});
    model->forward(tokens).backward();
    clip_gradients(setup);
    setup.optimizer->step();
  }
}

TrainState state_at(int64_t step) {
  TrainState s;
  s.step = step;
  s.best_val_loss = 2.5 + step;
  s.tokens_seen = 1000 * step;
  s.sampler_state = "sampler@" + std::to_string(step);
  s.scheduler = "warmup_cosine warmup_steps=0";
  s.extra["objective_rng"] = std::string("bytes\0with nul", 14);
  return s;
}

void expect_same_optimizer_state(torch::optim::Optimizer& a, torch::optim::Optimizer& b) {
  ASSERT_EQ(a.param_groups().size(), b.param_groups().size());
  for (size_t g = 0; g < a.param_groups().size(); ++g) {
    auto pa = a.param_groups()[g].params(), pb = b.param_groups()[g].params();
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
      auto& sa =
          static_cast<torch::optim::AdamWParamState&>(*a.state().at(pa[i].unsafeGetTensorImpl()));
      auto& sb =
          static_cast<torch::optim::AdamWParamState&>(*b.state().at(pb[i].unsafeGetTensorImpl()));
      EXPECT_EQ(sa.step(), sb.step());
      EXPECT_TRUE(torch::equal(sa.exp_avg(), sb.exp_avg()));
      EXPECT_TRUE(torch::equal(sa.exp_avg_sq(), sb.exp_avg_sq()));
    }
  }
}

TEST(Checkpoint, BitwiseRoundTripAndIdenticalContinuation) {
  TempDir dir;
  torch::manual_seed(1);
  TinyModel model;
  auto setup = make_optimizer(*model, kConfig);
  train_steps(model, setup, 3);
  model->buffer.fill_(7.0);
  std::string path =
      save_checkpoint(dir.str(), *model, setup.optimizer.get(), state_at(3), "a: 1\n");
  EXPECT_EQ(fs::path(path).filename(), "step_00000003.ckpt");
  auto after_save = torch::rand({4});  // consumes the RNG saved in the checkpoint

  torch::manual_seed(99);  // a different init and RNG position
  TinyModel fresh;
  auto fresh_setup = make_optimizer(*fresh, kConfig);
  TrainState loaded;
  auto info = load_checkpoint(dir.str(), *fresh, fresh_setup.optimizer.get(), &loaded);
  EXPECT_EQ(info.path, path);
  EXPECT_EQ(info.config_yaml, "a: 1\n");
  EXPECT_TRUE(torch::equal(torch::rand({4}), after_save));  // RNG restored

  auto sa = state_dict(*model), sb = state_dict(*fresh);
  ASSERT_EQ(sa.size(), sb.size());
  for (const auto& [name, t] : sa) EXPECT_TRUE(torch::equal(t, sb.at(name))) << name;
  expect_same_optimizer_state(*setup.optimizer, *fresh_setup.optimizer);
  EXPECT_EQ(loaded.step, 3);
  EXPECT_EQ(loaded.best_val_loss, 5.5);
  EXPECT_EQ(loaded.tokens_seen, 3000);
  EXPECT_EQ(loaded.sampler_state, "sampler@3");
  EXPECT_EQ(loaded.scheduler, "warmup_cosine warmup_steps=0");
  EXPECT_EQ(loaded.extra.at("objective_rng"), std::string("bytes\0with nul", 14));

  // Both continue identically (same data via the same seed).
  torch::manual_seed(5);
  train_steps(model, setup, 2);
  torch::manual_seed(5);
  train_steps(fresh, fresh_setup, 2);
  for (const auto& [name, t] : state_dict(*model))
    EXPECT_TRUE(torch::equal(t, state_dict(*fresh).at(name))) << name;
}

TEST(Checkpoint, InterruptedWriteKeepsPreviousCheckpoint) {
  TempDir dir;
  TinyModel model;
  auto setup = make_optimizer(*model, kConfig);
  std::string first = save_checkpoint(dir.str(), *model, setup.optimizer.get(), state_at(1), "");
  // Crash while writing step 2: a partial .tmp file and a half-written pointer tmp.
  std::string ckdir = checkpoint_dir(dir.str());
  std::ofstream(ckdir + "/step_00000002.ckpt.tmp") << "partial";
  std::ofstream(ckdir + "/latest.tmp") << "step_0000";
  EXPECT_EQ(resolve_checkpoint(dir.str()), first);
  TinyModel other;
  TrainState s;
  auto resumed = resume_latest(dir.str(), *other, nullptr, &s);
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(s.step, 1);
  // The next save cleans the leftovers.
  save_checkpoint(dir.str(), *model, setup.optimizer.get(), state_at(2), "");
  EXPECT_FALSE(fs::exists(ckdir + "/step_00000002.ckpt.tmp"));
  EXPECT_FALSE(fs::exists(ckdir + "/latest.tmp"));
}

TEST(Checkpoint, TruncatedLatestFallsBackWithWarning) {
  TempDir dir;
  TinyModel model;
  auto setup = make_optimizer(*model, kConfig);
  save_checkpoint(dir.str(), *model, setup.optimizer.get(), state_at(1), "");
  std::string second = save_checkpoint(dir.str(), *model, setup.optimizer.get(), state_at(2), "");
  fs::resize_file(second, fs::file_size(second) / 2);
  try {
    load_checkpoint(second, *model, nullptr, nullptr);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(second), std::string::npos);
  }
  TrainState s;
  auto fresh_setup = make_optimizer(*model, kConfig);
  ::testing::internal::CaptureStderr();
  auto resumed = resume_latest(dir.str(), *model, fresh_setup.optimizer.get(), &s);
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(s.step, 1);
  EXPECT_NE(err.find("step_00000002.ckpt"), std::string::npos);
  EXPECT_TRUE(fs::exists(second));  // never deleted
}

TEST(Checkpoint, CorruptedByteIsDetected) {
  TempDir dir;
  TinyModel model;
  std::string path = save_checkpoint(dir.str(), *model, nullptr, state_at(4), "");
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(path) / 2));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(fs::file_size(path) / 2));
    c = static_cast<char>(c ^ 0x5a);
    f.write(&c, 1);
  }
  try {
    read_checkpoint_state(path);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("CRC32"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
  EXPECT_THROW(resume_latest(dir.str(), *model, nullptr, nullptr), UserError);  // none valid
}

TEST(Checkpoint, KeepLastKeepsLatestAndBest) {
  TempDir dir;
  TinyModel model;
  for (int64_t step = 1; step <= 5; ++step) {
    SaveOptions options;
    options.keep_last = 2;
    options.is_best = step == 2;
    save_checkpoint(dir.str(), *model, nullptr, state_at(step), "", options);
  }
  auto files = list_checkpoints(dir.str());
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(fs::path(f).filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{"step_00000005.ckpt", "step_00000004.ckpt",
                                             "step_00000002.ckpt"}));
  std::string best = checkpoint_dir(dir.str()) + "/best.ckpt";
  ASSERT_TRUE(fs::exists(best));
  EXPECT_EQ(read_checkpoint_state(best).step, 2);
  EXPECT_EQ(read_checkpoint_state(resolve_checkpoint(dir.str())).step, 5);
}

TEST(Checkpoint, MismatchedModelIsUserError) {
  TempDir dir;
  TinyModel model;
  std::string path = save_checkpoint(dir.str(), *model, nullptr, state_at(1), "");
  torch::nn::Linear other(3, 3);
  try {
    load_checkpoint(path, *other, nullptr, nullptr);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos);
  }
  EXPECT_THROW(resolve_checkpoint(dir / "nope"), UserError);
}

// tests/fixtures/libtorch113_run was written by this project's checkpoint code built against
// Debian's LibTorch 1.13 (make_fixture.cpp.txt beside it): TinyModel after two AdamW steps.
// It loads under LibTorch 2.x with every tensor, the train state, the AdamW moments (training
// continues) and the CPU generator state (the next random number equals 1.13's) intact.
TEST(Checkpoint, LoadsACheckpointWrittenByLibTorch113) {
  const fs::path fixture = fs::path(ATTNLAB_SOURCE_DIR) / "tests/fixtures/libtorch113_run";
  TempDir dir;
  fs::copy(fixture / "checkpoints", fs::path(dir.str()) / "checkpoints",
           fs::copy_options::recursive);
  std::map<std::string, std::vector<float>> expected;
  float expected_random = 0;
  {
    std::ifstream values(fixture / "expected_values.txt");
    std::string line;
    std::getline(values, line);  // the checkpoint path make_fixture printed
    while (std::getline(values, line)) {
      std::istringstream fields(line);
      std::string name, number;
      fields >> name;
      std::vector<float> numbers;
      while (fields >> number) numbers.push_back(std::strtof(number.c_str(), nullptr));
      if (name == "random")
        expected_random = numbers.at(0);
      else
        expected[name] = numbers;
    }
  }
  ASSERT_EQ(expected.size(), 9u);

  torch::manual_seed(0);  // a different RNG state: the checkpoint must restore 1.13's
  TinyModel model;
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-2));
  TrainState state;
  load_checkpoint(dir.str(), *model, &optimizer, &state, /*restore_rng=*/true);
  EXPECT_EQ(torch::rand({1}).item<float>(), expected_random);
  EXPECT_EQ(state.step, 2);
  EXPECT_EQ(state.tokens_seen, 6);
  EXPECT_EQ(state.best_val_loss, 1.25);
  EXPECT_EQ(state.sampler_state, "sampler-state");
  for (const auto& item : model->named_parameters()) {
    ASSERT_TRUE(expected.count(item.key())) << item.key();
    auto flat = item.value().detach().flatten().contiguous();
    const auto& want = expected.at(item.key());
    ASSERT_EQ(flat.numel(), static_cast<int64_t>(want.size())) << item.key();
    for (int64_t i = 0; i < flat.numel(); ++i)
      EXPECT_EQ(flat[i].item<float>(), want[i]) << item.key() << "[" << i << "]";
  }
  EXPECT_TRUE(torch::equal(model->buffer, torch::tensor({1.5f, -2.0f})));
  // The AdamW moments came along: its step count is 2 for every parameter.
  for (const auto& p : model->parameters()) {
    auto entry = optimizer.state().find(p.unsafeGetTensorImpl());
    ASSERT_NE(entry, optimizer.state().end());
    ASSERT_NE(entry->second, nullptr);
    EXPECT_EQ(static_cast<torch::optim::AdamWParamState&>(*entry->second).step(), 2);
  }
  // Training goes on from it.
  optimizer.zero_grad();
  model->forward(torch::tensor({1, 2, 3})).backward();
  optimizer.step();
  EXPECT_TRUE(torch::isfinite(model->embed->weight).all().item<bool>());
}

}  // namespace
}  // namespace attnlab

namespace attnlab {
namespace {

// A checkpoint's config record from before attention.mask / attention.block_size moved to
// model.* (config/moved_keys.h) is compared at the new keys: the same mask is no change (resume
// goes on), another mask is a model change named by its new key.
TEST(Checkpoint, ConfigRecordFromBeforeTheMaskMovedComparesAtModelKeys) {
  const std::string old_record =
      "model: {d_model: 32, n_layers: 2}\n"
      "attention: {name: mha, mask: block_causal, block_size: 16, rope: true}\n";
  const YAML::Node same = YAML::Load(
      "model: {d_model: 32, n_layers: 2, mask: block_causal, block_size: 16}\n"
      "attention: {name: mha, rope: true}\n");
  EXPECT_TRUE(model_config_changes(old_record, same).empty());
  const YAML::Node other = YAML::Load(
      "model: {d_model: 32, n_layers: 2, mask: causal, block_size: 16}\n"
      "attention: {name: mha, rope: true}\n");
  const std::vector<std::string> changes = model_config_changes(old_record, other);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0], "model.mask: block_causal -> causal");
}

}  // namespace
}  // namespace attnlab
