// Loader integrity (issue 17): a checkpoint whose archive structure is damaged behind a valid CRC
// is skipped for the previous one, whatever the damage; a checkpoint records its tokenizer and a
// different one is an error; devices and foreign files are rejected before they are read; a
// damaged metrics.jsonl on resume is a UserError naming the line.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/checkpoint.h"
#include "trainer/metrics_logger.h"
#include "trainer/optimizer.h"
#include "trainer/weight_sources.h"
#include "trainer/weights_io.h"

namespace attnlab {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;
using testing::TinyModel;

const YAML::Node kConfig = YAML::Load("optim: {lr: 0.01}");

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// The checkpoint trailer (trainer/checkpoint.cpp) recomputed for `archive`: the damage below
// hides behind a valid CRC, as a CRC collision or a deliberate edit would.
std::string with_valid_trailer(const std::string& archive) {
  std::string trailer(24, '\0');
  const uint64_t size = archive.size();
  const uint32_t crc = static_cast<uint32_t>(
      crc32_z(0L, reinterpret_cast<const Bytef*>(archive.data()), archive.size()));
  const uint32_t version = 1;
  std::memcpy(&trailer[0], "ATNLCKP1", 8);
  std::memcpy(&trailer[8], &size, 8);
  std::memcpy(&trailer[16], &crc, 4);
  std::memcpy(&trailer[20], &version, 4);
  return archive + trailer;
}

TrainState state_at(int64_t step) {
  TrainState state;
  state.step = step;
  state.sampler_state = "sampler@" + std::to_string(step);
  state.tokenizer = "byte-v1";
  return state;
}

TEST(IntegrityCheckpoint, StructurallyDamagedArchiveBehindAValidCrcFallsBack) {
  TempDir dir;
  torch::manual_seed(1);
  TinyModel model;
  auto setup = make_optimizer(*model, kConfig);
  save_checkpoint(dir.str(), *model, setup.optimizer.get(), state_at(1), "a: 1\n");
  const std::string newest =
      save_checkpoint(dir.str(), *model, setup.optimizer.get(), state_at(2), "a: 1\n");
  const std::string original = read_bytes(newest);
  const std::string archive = original.substr(0, original.size() - 24);

  // Positions spread over the archive, denser over the zip directory at its end, each byte
  // replaced by several values.
  std::vector<size_t> positions;
  for (size_t i = 0; i < 60; ++i) positions.push_back(i * archive.size() / 60);
  for (size_t i = 0; i < 60 && i * 4 < archive.size(); ++i)
    positions.push_back(archive.size() - 1 - i * 4);
  int fallbacks = 0, loads = 0;
  for (size_t position : positions) {
    for (unsigned char value : {0x00, 0xff, 0x7f}) {
      std::string damaged = archive;
      if (static_cast<unsigned char>(damaged[position]) == value) continue;
      damaged[position] = static_cast<char>(value);
      write_bytes(newest, with_valid_trailer(damaged));
      TinyModel fresh;
      auto fresh_setup = make_optimizer(*fresh, kConfig);
      TrainState loaded;
      loaded.tokenizer = "byte-v1";
      ::testing::internal::CaptureStderr();
      std::optional<LoadedCheckpoint> result;
      try {
        result = resume_latest(dir.str(), *fresh, fresh_setup.optimizer.get(), &loaded);
      } catch (const std::exception& error) {
        ::testing::internal::GetCapturedStderr();
        FAIL() << "byte " << position << " := " << int(value) << ": resume threw instead of "
               << "falling back: " << error.what();
      }
      ::testing::internal::GetCapturedStderr();
      ASSERT_TRUE(result.has_value());
      // Either the damage was harmless data (the newest loads, whatever its values now are) or
      // the previous checkpoint was loaded.
      if (result->path == newest) {
        ++loads;
      } else {
        ASSERT_EQ(loaded.step, 1);
        ++fallbacks;
      }
    }
  }
  EXPECT_GT(fallbacks, 20) << "the damage should mostly hit structure; loads " << loads;
}

TEST(IntegrityCheckpoint, TokenizerIsRecordedAndAnotherOneIsAnError) {
  TempDir dir;
  torch::manual_seed(1);
  TinyModel model;
  auto setup = make_optimizer(*model, kConfig);
  TrainState saved = state_at(3);
  saved.tokenizer = "bpe400-0123abcd";
  const std::string path = save_checkpoint(dir.str(), *model, setup.optimizer.get(), saved, "");
  EXPECT_EQ(read_checkpoint_state(path).tokenizer, "bpe400-0123abcd");

  TrainState same;
  same.tokenizer = "bpe400-0123abcd";
  EXPECT_NO_THROW(load_checkpoint(path, *model, setup.optimizer.get(), &same));
  EXPECT_EQ(same.step, 3);

  TrainState other;
  other.tokenizer = "bpe400-ffff0000";  // the same vocabulary size, other pieces
  try {
    resume_latest(dir.str(), *model, setup.optimizer.get(), &other);
    FAIL() << "expected TokenizerMismatch";
  } catch (const TokenizerMismatch& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("bpe400-0123abcd"), std::string::npos) << message;
    EXPECT_NE(message.find("bpe400-ffff0000"), std::string::npos) << message;
  }
  // Checkpoints from before the field existed load under any tokenizer and adopt it.
  TrainState untagged = state_at(4);
  untagged.tokenizer.clear();
  save_checkpoint(dir.str(), *model, setup.optimizer.get(), untagged, "");
  TrainState adopting;
  adopting.tokenizer = "byte-v1";
  ASSERT_TRUE(resume_latest(dir.str(), *model, setup.optimizer.get(), &adopting).has_value());
  EXPECT_EQ(adopting.step, 4);
  EXPECT_EQ(adopting.tokenizer, "byte-v1");
}

TEST(IntegrityCheckpoint, DeviceIsRejectedBeforeAnythingIsRead) {
  // `init_from=/dev/zero` read the endless device into memory (23 GB) before this check.
  // /dev/null first: without the check it fails at once, and /dev/zero is not tried (it would
  // read forever).
  for (const std::string path : {"/dev/null", "/dev/zero"}) {
    if (HasFailure()) return;
    try {
      read_weights(path);
      FAIL() << "expected UserError for " << path;
    } catch (const UserError& error) {
      EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find("regular file"), std::string::npos) << error.what();
    }
  }
}

TEST(IntegrityCheckpoint, CheckpointTrailerIsCheckedBeforeTheFileIsRead) {
  TempDir dir;
  const std::string path = dir / "step_00000001.ckpt";
  write_bytes(path, std::string(100, 'x'));
  try {
    read_checkpoint_state(path);
    FAIL() << "expected UserError";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find("missing end marker"), std::string::npos)
        << error.what();
  }
}

TEST(IntegrityMetrics, NonIntegerStepOnResumeIsAUserErrorNamingTheLine) {
  TempDir dir;
  write_bytes(dir / "metrics.jsonl",
              "{\"step\":1,\"loss\":2.0}\n{\"step\":\"seven\"}\n{\"step\":3}\n");
  try {
    MetricsLogger logger(dir.str(), 2);
    FAIL() << "expected UserError";
  } catch (const UserError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("metrics.jsonl' line 2"), std::string::npos) << message;
    EXPECT_NE(message.find("\"seven\""), std::string::npos) << message;
  }
  write_bytes(dir / "metrics.jsonl", "[1, 2]\n{\"step\":3}\n");
  EXPECT_THROW(MetricsLogger(dir.str(), 2), UserError);
}

}  // namespace
}  // namespace attnlab
