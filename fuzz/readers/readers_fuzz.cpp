// libFuzzer target for the readers of files attnlab does not write itself in this process: token
// shards (data/token_shard.cpp), checkpoints (trainer/checkpoint.cpp), torch.save files
// (io/torch_pickle_reader.cpp, for init_from) and safetensors files
// (io/safetensors.cpp, for Hugging Face imports). Their contract: any bytes give either a
// result or a UserError naming the file; never a crash, a hang, another exception type or a huge
// allocation.
//
// The first input byte picks the reader; the rest is the file. Checksums would stop almost every
// mutation at the first check, so the target repairs them before reading: shard header and
// payload CRCs are recomputed, and a checkpoint input is the archive alone, to which the target
// appends a valid trailer. So the fuzzer reaches what a deliberate or CRC-colliding damage would.
// Seeds: fuzz/readers/corpus/ (see README.md there). Run by tests via fuzz/readers/run.sh.
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "common/error.h"
#include "data/token_shard.h"
#include "io/safetensors.h"
#include "io/torch_pickle_reader.h"
#include "trainer/checkpoint.h"

namespace {

constexpr uint64_t kMaxInputBytes = 1 << 20;

const std::string& scratch_path() {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir && *dir ? dir : "/tmp") + "/attnlab_fuzz_readers_" +
           std::to_string(::getpid());
  }();
  return path;
}

void write_scratch(const std::string& bytes) {
  std::ofstream out(scratch_path(), std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

uint32_t crc_of(const std::string& bytes, size_t offset, size_t size) {
  return static_cast<uint32_t>(
      crc32_z(0L, reinterpret_cast<const Bytef*>(bytes.data() + offset), size));
}

void put_u32(std::string& bytes, size_t offset, uint32_t value) {
  std::memcpy(&bytes[offset], &value, 4);
}

// Shard layout (data/token_shard.h): payload CRC at 48, header CRC at 52 over bytes 0..255.
std::string repaired_shard(std::string bytes) {
  if (bytes.size() < attnlab::kShardHeaderBytes) return bytes;
  put_u32(bytes, 48,
          crc_of(bytes, attnlab::kShardHeaderBytes, bytes.size() - attnlab::kShardHeaderBytes));
  put_u32(bytes, 52, 0);
  put_u32(bytes, 52, crc_of(bytes, 0, attnlab::kShardHeaderBytes));
  return bytes;
}

// Checkpoint trailer (trainer/checkpoint.cpp): magic, archive size, CRC32, format version.
std::string with_checkpoint_trailer(std::string archive) {
  std::string trailer(24, '\0');
  const uint64_t size = archive.size();
  const uint32_t crc = crc_of(archive, 0, archive.size()), version = 1;
  std::memcpy(&trailer[0], "ATNLCKP1", 8);
  std::memcpy(&trailer[8], &size, 8);
  std::memcpy(&trailer[16], &crc, 4);
  std::memcpy(&trailer[20], &version, 4);
  return archive + trailer;
}

void read_as(uint8_t reader, const std::string& file) {
  switch (reader % 4) {
    case 0: {
      write_scratch(repaired_shard(file));
      const auto shard = attnlab::TokenShard::open(scratch_path());
      std::vector<int64_t> tokens(static_cast<size_t>(std::min<int64_t>(shard->size(), 4096)));
      shard->copy(0, static_cast<int64_t>(tokens.size()), tokens.data());
      break;
    }
    case 1: {
      write_scratch(with_checkpoint_trailer(file));
      attnlab::TrainState state;
      const auto weights = attnlab::read_checkpoint_model_state(scratch_path(), &state);
      for (const auto& [name, tensor] : weights) (void)tensor.sum().item<double>();
      break;
    }
    case 3: {
      write_scratch(file);
      const attnlab::SafetensorsFile tensors(scratch_path());
      for (const auto& name : tensors.names()) (void)tensors.tensor(name).sum().item<double>();
      break;
    }
    default: {
      write_scratch(file);
      const auto weights = attnlab::read_torch_save_file(scratch_path());
      for (const auto& [name, tensor] : weights) (void)tensor.sum().item<double>();
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > kMaxInputBytes) return 0;
  const std::string file(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    read_as(data[0], file);
  } catch (const attnlab::UserError&) {
    // The contract: damage is a UserError.
  } catch (const std::exception& error) {
    std::fprintf(stderr, "reader %d threw a non-UserError: %s\n", data[0] % 3, error.what());
    std::abort();
  }
  return 0;
}
