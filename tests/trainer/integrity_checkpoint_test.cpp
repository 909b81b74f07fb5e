// Loader integrity (issue 17): a checkpoint whose archive structure is damaged behind a valid CRC
// is skipped for the previous one, whatever the damage; a checkpoint records its tokenizer and a
// different one is an error; devices and foreign files are rejected before they are read; a
// damaged metrics.jsonl on resume is a UserError naming the line.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "io/weights_io.h"
#include "tests/trainer/trainer_test_util.h"
#include "trainer/checkpoint.h"
#include "trainer/metrics_logger.h"
#include "trainer/nonfinite_guard.h"
#include "trainer/optimizer.h"
#include "trainer/weight_sources.h"

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

// One stored record of a checkpoint's zip archive (small archives: no zip64 fields).
struct ZipRecord {
  std::string name;
  size_t central = 0;  // offset of its central directory entry
  size_t local = 0;    // offset of its local header
  size_t data = 0;     // offset of its data
  size_t size = 0;
};

uint16_t get16(const std::string& bytes, size_t at) {
  uint16_t v;
  std::memcpy(&v, bytes.data() + at, 2);
  return v;
}
uint32_t get32(const std::string& bytes, size_t at) {
  uint32_t v;
  std::memcpy(&v, bytes.data() + at, 4);
  return v;
}

std::vector<ZipRecord> zip_records(const std::string& archive) {
  size_t eocd = archive.rfind(std::string("PK\x05\x06", 4));
  EXPECT_NE(eocd, std::string::npos);
  const size_t count = get16(archive, eocd + 10);
  size_t at = get32(archive, eocd + 16);
  std::vector<ZipRecord> records;
  for (size_t i = 0; i < count; ++i) {
    ZipRecord r;
    r.central = at;
    r.size = get32(archive, at + 20);
    const size_t name_length = get16(archive, at + 28);
    r.name = archive.substr(at + 46, name_length);
    r.local = get32(archive, at + 42);
    r.data = r.local + 30 + get16(archive, r.local + 26) + get16(archive, r.local + 28);
    at += 46 + name_length + get16(archive, at + 30) + get16(archive, at + 32);
    records.push_back(r);
  }
  return records;
}

// The record whose data holds byte `position`.
ZipRecord record_at(const std::string& archive, size_t position) {
  for (const auto& r : zip_records(archive))
    if (position >= r.data && position < r.data + r.size) return r;
  ADD_FAILURE() << "no record holds byte " << position;
  return {};
}

// Recomputes a record's CRC32 in its local header and directory entry, as a writer that
// computed it over wrong data would have.
void refix_record_crc(std::string& archive, const ZipRecord& r) {
  const uint32_t crc = static_cast<uint32_t>(
      crc32_z(0L, reinterpret_cast<const Bytef*>(archive.data() + r.data), r.size));
  std::memcpy(&archive[r.local + 14], &crc, 4);
  std::memcpy(&archive[r.central + 16], &crc, 4);
}

// Two checkpoints (steps 1 and 2) of a tiny model; returns the newest's path.
std::string two_checkpoints(const TempDir& dir, TinyModel& model) {
  auto setup = make_optimizer(*model, kConfig);
  // One step so the optimizer holds moments (hashed too).
  setup.optimizer->zero_grad();
  model->forward(torch::tensor({1, 2, 3}, torch::kLong)).backward();
  setup.optimizer->step();
  save_checkpoint(dir.str(), *model, setup.optimizer.get(), state_at(1), "a: 1\n");
  return save_checkpoint(dir.str(), *model, setup.optimizer.get(), state_at(2), "a: 1\n");
}

// Resumes dir's run; returns the step loaded and the warnings printed.
std::pair<int64_t, std::string> resume_step(const TempDir& dir) {
  TinyModel fresh;
  auto setup = make_optimizer(*fresh, kConfig);
  TrainState loaded;
  loaded.tokenizer = "byte-v1";
  ::testing::internal::CaptureStderr();
  std::optional<LoadedCheckpoint> result;
  try {
    result = resume_latest(dir.str(), *fresh, setup.optimizer.get(), &loaded);
  } catch (...) {
    ::testing::internal::GetCapturedStderr();
    throw;
  }
  const std::string warnings = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(result.has_value());
  return {loaded.step, warnings};
}

// The error of a direct load (export / eval / init_from read the file this way).
std::string export_error(const std::string& path) {
  try {
    read_checkpoint_model_state(path);
  } catch (const UserError& error) {
    return error.what();
  }
  return "";
}

// A payload byte flipped behind a re-fixed file checksum (16 of 20 such flips trained on
// unnoticed): the record's CRC32 finds it; with the record CRC re-fixed too (a writer bug that
// checksums what it wrote), the tensor's recorded hash finds it and names the tensor. Resume
// falls back to the previous checkpoint; export refuses the file.
TEST(IntegrityCheckpoint, AChangedTensorBehindReFixedChecksumsIsFoundAndNamed) {
  TempDir dir;
  torch::manual_seed(3);
  TinyModel model;
  const std::string newest = two_checkpoints(dir, model);
  const std::string original = read_bytes(newest);
  const std::string archive = original.substr(0, original.size() - 24);
  const torch::Tensor norm = model->blocks[0]->as<testing::TinyBlockImpl>()->norm;
  const std::string weight_bytes(static_cast<const char*>(norm.data_ptr()), norm.nbytes());
  const size_t found = archive.find(weight_bytes);
  ASSERT_NE(found, std::string::npos);
  ASSERT_EQ(archive.find(weight_bytes, found + 1), std::string::npos);  // one copy only
  std::string damaged = archive;
  damaged[found + 2] = static_cast<char>(damaged[found + 2] ^ 0x10);  // 1.0 -> 1.0000153

  write_bytes(newest, with_valid_trailer(damaged));
  auto [step, warnings] = resume_step(dir);
  EXPECT_EQ(step, 1) << "the damaged checkpoint was loaded";
  EXPECT_NE(warnings.find("CRC32 mismatch"), std::string::npos) << warnings;
  EXPECT_NE(export_error(newest).find("CRC32 mismatch"), std::string::npos);

  refix_record_crc(damaged, record_at(damaged, found + 2));
  write_bytes(newest, with_valid_trailer(damaged));
  std::tie(step, warnings) = resume_step(dir);
  EXPECT_EQ(step, 1) << "the damaged checkpoint was loaded";
  EXPECT_NE(warnings.find("tensor 'blocks.0.norm'"), std::string::npos) << warnings;
  const std::string error = export_error(newest);
  EXPECT_NE(error.find(newest), std::string::npos) << error;
  EXPECT_NE(error.find("model tensor 'blocks.0.norm' differs"), std::string::npos) << error;

  // The undamaged file loads, its hashes matching.
  write_bytes(newest, original);
  EXPECT_EQ(resume_step(dir).first, 2);
  EXPECT_EQ(export_error(newest), "");
}

// An optimizer moment changed behind re-fixed checksums is found as well (after the optimizer
// has loaded it; the fallback's load replaces that state).
TEST(IntegrityCheckpoint, AChangedOptimizerMomentIsFound) {
  TempDir dir;
  torch::manual_seed(4);
  TinyModel model;
  auto setup = make_optimizer(*model, kConfig);
  setup.optimizer->zero_grad();
  model->forward(torch::tensor({1, 2, 3}, torch::kLong)).backward();
  setup.optimizer->step();
  save_checkpoint(dir.str(), *model, setup.optimizer.get(), state_at(1), "a: 1\n");
  const std::string newest =
      save_checkpoint(dir.str(), *model, setup.optimizer.get(), state_at(2), "a: 1\n");
  const NamedTensorList moments = named_optimizer_state(*model, *setup.optimizer);
  const torch::Tensor* moment = nullptr;
  for (const auto& [name, tensor] : moments)
    if (name == "optimizer.exp_avg_sq[embed.weight]") moment = &tensor;
  ASSERT_NE(moment, nullptr);
  const std::string original = read_bytes(newest);
  std::string archive = original.substr(0, original.size() - 24);
  const std::string bytes(static_cast<const char*>(moment->data_ptr()), moment->nbytes());
  const size_t found = archive.find(bytes);
  ASSERT_NE(found, std::string::npos);
  archive[found + 1] = static_cast<char>(archive[found + 1] ^ 0x40);
  refix_record_crc(archive, record_at(archive, found + 1));
  write_bytes(newest, with_valid_trailer(archive));
  auto [step, warnings] = resume_step(dir);
  EXPECT_EQ(step, 1);
  EXPECT_NE(warnings.find("optimizer tensor 'optimizer.exp_avg_sq[embed.weight]'"),
            std::string::npos)
      << warnings;
}

// One byte of a local header's name length (file checksum re-fixed, as a writer bug would leave
// it) made export, eval and resume read a tensor from a shifted offset and exit 0.
TEST(IntegrityCheckpoint, ADamagedLocalHeaderNameLengthIsFound) {
  TempDir dir;
  torch::manual_seed(5);
  TinyModel model;
  const std::string newest = two_checkpoints(dir, model);
  const std::string original = read_bytes(newest);
  const std::string archive = original.substr(0, original.size() - 24);
  const torch::Tensor embed = model->embed->weight;
  const size_t found =
      archive.find(std::string(static_cast<const char*>(embed.data_ptr()), embed.nbytes()));
  ASSERT_NE(found, std::string::npos);
  const ZipRecord record = record_at(archive, found);
  std::string damaged = archive;
  damaged[record.local + 26] = static_cast<char>(damaged[record.local + 26] + 1);
  write_bytes(newest, with_valid_trailer(damaged));
  auto [step, warnings] = resume_step(dir);
  EXPECT_EQ(step, 1) << "the damaged checkpoint was loaded";
  EXPECT_NE(warnings.find("zip record '" + record.name + "'"), std::string::npos) << warnings;
  EXPECT_NE(warnings.find("name length"), std::string::npos) << warnings;
  const std::string error = export_error(newest);
  EXPECT_NE(error.find(newest), std::string::npos) << error;
  EXPECT_NE(error.find("name length"), std::string::npos) << error;
}

// A `latest` naming a checkpoint that is gone fell back to the newest step file silently.
TEST(IntegrityCheckpoint, ALatestNamingADeletedCheckpointWarns) {
  TempDir dir;
  torch::manual_seed(6);
  TinyModel model;
  const std::string newest = two_checkpoints(dir, model);
  fs::remove(newest);
  auto [step, warnings] = resume_step(dir);
  EXPECT_EQ(step, 1);
  EXPECT_NE(warnings.find("names step_00000002.ckpt, which does not exist"), std::string::npos)
      << warnings;
  ::testing::internal::CaptureStderr();
  const std::string resolved = resolve_checkpoint(dir.str());
  const std::string resolve_warning = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(fs::path(resolved).filename(), "step_00000001.ckpt");
  EXPECT_NE(resolve_warning.find("step_00000002.ckpt"), std::string::npos) << resolve_warning;
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
