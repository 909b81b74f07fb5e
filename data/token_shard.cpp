// Token shard writing and memory-mapped reading (see token_shard.h).
#include "data/token_shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>

#include "common/error.h"

namespace attnlab {

namespace fs = std::filesystem;

namespace {

const char kMagic[8] = {'A', 'T', 'N', 'L', 'T', 'O', 'K', '\0'};
constexpr size_t kPayloadCrcOffset = 48;
constexpr size_t kHeaderCrcOffset = 52;
constexpr size_t kFingerprintOffset = 56;
constexpr size_t kFingerprintBytes = 64;
constexpr size_t kRoleOffset = 120;
constexpr size_t kCorpusHashOffset = 128;

// zlib's crc32 takes 32-bit lengths: feed large buffers in chunks.
uint32_t crc32_of(const unsigned char* data, size_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (size > 0) {
    const uInt chunk = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    crc = crc32(crc, data, chunk);
    data += chunk, size -= chunk;
  }
  return static_cast<uint32_t>(crc);
}

template <typename T>
void put(unsigned char* header, size_t offset, T value) {
  std::memcpy(header + offset, &value, sizeof(T));  // host order; x86/ARM are little-endian
}
template <typename T>
T get(const unsigned char* header, size_t offset) {
  T value;
  std::memcpy(&value, header + offset, sizeof(T));
  return value;
}

uint32_t header_crc(const unsigned char* header) {
  unsigned char copy[kShardHeaderBytes];
  std::memcpy(copy, header, kShardHeaderBytes);
  put<uint32_t>(copy, kHeaderCrcOffset, 0);
  return crc32_of(copy, kShardHeaderBytes);
}

// write() all of `data` or throw.
void write_all(int fd, const void* data, size_t size, const fs::path& path) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  while (size > 0) {
    const ssize_t written = ::write(fd, bytes, size);
    check_user(written > 0, "cannot write " + path.string() + ": " + std::strerror(errno));
    bytes += written, size -= static_cast<size_t>(written);
  }
}

// The first token id in `payload` that is >= vocab_size, or -1 when all are in range.
int64_t first_out_of_range(const unsigned char* payload, uint64_t count, uint32_t dtype_bytes,
                           uint64_t vocab_size) {
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t id =
        dtype_bytes == 2 ? get<uint16_t>(payload, i * 2) : get<uint32_t>(payload, i * 4);
    if (id >= vocab_size) return static_cast<int64_t>(i);
  }
  return -1;
}

std::string hash_hex(uint64_t value) {
  char buffer[17];
  std::snprintf(buffer, sizeof(buffer), "%016llx", static_cast<unsigned long long>(value));
  return buffer;
}

}  // namespace

std::string shard_role_name(ShardRole role) {
  switch (role) {
    case ShardRole::kTrain:
      return "train";
    case ShardRole::kVal:
      return "val";
    default:
      return "unspecified";
  }
}

TokenShardWriter::TokenShardWriter(fs::path path, ShardInfo info)
    : path_(std::move(path)), info_(std::move(info)) {
  check_user(info_.fingerprint.size() < kFingerprintBytes,
             "tokenizer fingerprint too long for a shard header: " + info_.fingerprint);
  info_.version = kShardFormatVersion;
  info_.dtype_bytes = info_.vocab_size <= 65536 ? 2 : 4;
  info_.token_count = 0;
  crc_ = static_cast<uint32_t>(crc32(0L, Z_NULL, 0));
  fs::create_directories(path_.parent_path());
  tmp_ = path_.string() + ".tmp" + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  check_user(fd_ >= 0, "cannot create " + tmp_.string() + ": " + std::strerror(errno));
  const unsigned char placeholder[kShardHeaderBytes] = {};
  write_all(fd_, placeholder, sizeof(placeholder), tmp_);
}

TokenShardWriter::~TokenShardWriter() {
  if (fd_ >= 0) {  // not finished (an exception): leave no partial file behind
    ::close(fd_);
    std::error_code ignored;
    fs::remove(tmp_, ignored);
  }
}

void TokenShardWriter::append(const int32_t* tokens, size_t count) {
  std::vector<unsigned char> payload(count * info_.dtype_bytes);
  for (size_t i = 0; i < count; ++i) {
    if (tokens[i] < 0 || static_cast<uint64_t>(tokens[i]) >= info_.vocab_size)
      throw UserError("token id " + std::to_string(tokens[i]) +
                      " outside the vocabulary while writing " + path_.string());
    if (info_.dtype_bytes == 2) {
      put<uint16_t>(payload.data(), i * 2, static_cast<uint16_t>(tokens[i]));
    } else {
      put<uint32_t>(payload.data(), i * 4, static_cast<uint32_t>(tokens[i]));
    }
  }
  const unsigned char* data = payload.data();
  size_t size = payload.size();
  while (size > 0) {  // zlib's crc32 takes 32-bit lengths
    const uInt chunk = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    crc_ = static_cast<uint32_t>(crc32(crc_, data, chunk));
    data += chunk, size -= chunk;
  }
  write_all(fd_, payload.data(), payload.size(), tmp_);
  info_.token_count += count;
}

const ShardInfo& TokenShardWriter::finish() {
  unsigned char header[kShardHeaderBytes] = {};
  std::memcpy(header, kMagic, sizeof(kMagic));
  put<uint32_t>(header, 8, info_.version);
  put<uint32_t>(header, 12, info_.dtype_bytes);
  put<uint64_t>(header, 16, info_.token_count);
  put<uint64_t>(header, 24, info_.utf8_bytes);
  put<uint64_t>(header, 32, info_.document_count);
  put<uint64_t>(header, 40, info_.vocab_size);
  put<uint32_t>(header, kPayloadCrcOffset, crc_);
  std::memcpy(header + kFingerprintOffset, info_.fingerprint.data(), info_.fingerprint.size());
  put<uint32_t>(header, kRoleOffset, static_cast<uint32_t>(info_.role));
  put<uint64_t>(header, kCorpusHashOffset, info_.corpus_hash);
  put<uint32_t>(header, kHeaderCrcOffset, header_crc(header));
  check_user(::pwrite(fd_, header, sizeof(header), 0) == static_cast<ssize_t>(sizeof(header)),
             "cannot write " + tmp_.string() + ": " + std::strerror(errno));
  ::fsync(fd_);
  ::close(fd_);
  fd_ = -1;
  fs::rename(tmp_, path_);  // readers see the old file or the complete new one, never a part
  return info_;
}

void write_token_shard(const fs::path& path, const std::vector<int32_t>& tokens, ShardInfo info) {
  TokenShardWriter writer(path, std::move(info));
  writer.append(tokens.data(), tokens.size());
  writer.finish();
}

std::shared_ptr<const TokenShard> TokenShard::open(const fs::path& path,
                                                   const std::string& expected_fingerprint) {
  ShardExpectation expected;
  expected.fingerprint = expected_fingerprint;
  return open(path, expected);
}

std::shared_ptr<const TokenShard> TokenShard::open(const fs::path& path,
                                                   const ShardExpectation& expected) {
  const std::string name = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY);
  check_user(fd >= 0, "cannot open token shard " + name + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw UserError("token shard " + name + " is not a regular file");
  }
  const auto file_bytes = static_cast<size_t>(st.st_size);
  if (file_bytes < kShardHeaderBytes) {
    ::close(fd);
    throw UserError("token shard " + name + " is truncated (" + std::to_string(file_bytes) +
                    " bytes, smaller than its header); delete it and run `attnlab prepare`");
  }
  void* mapping = ::mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file alive
  check_user(mapping != MAP_FAILED, "cannot mmap token shard " + name);

  std::shared_ptr<TokenShard> shard(new TokenShard());
  shard->path_ = path;
  shard->mapping_ = mapping;
  shard->mapping_bytes_ = file_bytes;
  const auto* header = static_cast<const unsigned char*>(mapping);
  const std::string advice = "; delete it and run `attnlab prepare` to rebuild";

  check_user(std::memcmp(header, kMagic, sizeof(kMagic)) == 0,
             name + " is not an attnlab token shard (bad magic)");
  ShardInfo& info = shard->info_;
  info.version = get<uint32_t>(header, 8);
  check_user(info.version == kShardFormatVersion, "token shard " + name + " has format version " +
                                                      std::to_string(info.version) + ", expected " +
                                                      std::to_string(kShardFormatVersion) + advice);
  check_user(get<uint32_t>(header, kHeaderCrcOffset) == header_crc(header),
             "token shard " + name + " is corrupted (header checksum mismatch)" + advice);
  info.dtype_bytes = get<uint32_t>(header, 12);
  info.token_count = get<uint64_t>(header, 16);
  info.utf8_bytes = get<uint64_t>(header, 24);
  info.document_count = get<uint64_t>(header, 32);
  info.vocab_size = get<uint64_t>(header, 40);
  const char* fp = reinterpret_cast<const char*>(header + kFingerprintOffset);
  info.fingerprint.assign(fp, strnlen(fp, kFingerprintBytes));
  info.role = static_cast<ShardRole>(get<uint32_t>(header, kRoleOffset));
  info.corpus_hash = get<uint64_t>(header, kCorpusHashOffset);
  check_user(info.dtype_bytes == 2 || info.dtype_bytes == 4,
             "token shard " + name + " has dtype of " + std::to_string(info.dtype_bytes) +
                 " bytes, expected 2 or 4" + advice);
  check_user(info.role == ShardRole::kUnspecified || info.role == ShardRole::kTrain ||
                 info.role == ShardRole::kVal,
             "token shard " + name + " has an unknown role " +
                 std::to_string(static_cast<uint32_t>(info.role)) + advice);

  // Compared in tokens, so a huge token_count cannot overflow the byte count.
  const uint64_t payload_bytes = file_bytes - kShardHeaderBytes;
  check_user(
      payload_bytes % info.dtype_bytes == 0 && payload_bytes / info.dtype_bytes == info.token_count,
      "token shard " + name + " is truncated or padded: " + std::to_string(file_bytes) +
          " bytes, header promises " + std::to_string(info.token_count) + " tokens of " +
          std::to_string(info.dtype_bytes) + " bytes" + advice);
  const size_t expected_bytes = kShardHeaderBytes + info.token_count * info.dtype_bytes;
  check_user(file_bytes == expected_bytes,
             "token shard " + name + " is truncated or padded: " + std::to_string(file_bytes) +
                 " bytes, header promises " + std::to_string(expected_bytes) + advice);
  shard->payload_ = header + kShardHeaderBytes;
  check_user(get<uint32_t>(header, kPayloadCrcOffset) ==
                 crc32_of(shard->payload_, file_bytes - kShardHeaderBytes),
             "token shard " + name + " is corrupted (payload checksum mismatch)" + advice);
  // Ids are checked once here, so every later read is an in-range embedding index.
  check_user(info.vocab_size > 0 && (info.dtype_bytes == 4 || info.vocab_size <= 65536),
             "token shard " + name + " has vocabulary size " + std::to_string(info.vocab_size) +
                 ", which its " + std::to_string(info.dtype_bytes) + "-byte ids cannot hold" +
                 advice);
  const int64_t bad =
      first_out_of_range(shard->payload_, info.token_count, info.dtype_bytes, info.vocab_size);
  check_user(bad < 0, "token shard " + name + " holds token id " +
                          std::to_string(bad < 0 ? 0 : shard->token(bad)) + " at position " +
                          std::to_string(bad) + ", outside its vocabulary of " +
                          std::to_string(info.vocab_size) + advice);
  check_user(expected.fingerprint.empty() || expected.fingerprint == info.fingerprint,
             "token shard " + name + " was written by tokenizer '" + info.fingerprint +
                 "' but the config's tokenizer is '" + expected.fingerprint + "'");
  check_user(expected.vocab_size == 0 || expected.vocab_size == info.vocab_size,
             "token shard " + name + " has vocabulary size " + std::to_string(info.vocab_size) +
                 " but the tokenizer has " + std::to_string(expected.vocab_size) + advice);
  check_user(expected.role == ShardRole::kUnspecified || expected.role == info.role,
             "token shard " + name + " holds the " + shard_role_name(info.role) +
                 " split, expected the " + shard_role_name(expected.role) + " split" + advice);
  check_user(expected.corpus_hash == 0 || expected.corpus_hash == info.corpus_hash,
             "token shard " + name + " was built from corpus " + hash_hex(info.corpus_hash) +
                 " but the configured corpus is " + hash_hex(expected.corpus_hash) +
                 " (the corpus files changed)" + advice);
  return shard;
}

TokenShard::~TokenShard() {
  if (mapping_) ::munmap(mapping_, mapping_bytes_);
}

int64_t TokenShard::token(int64_t index) const {
  if (index < 0 || index >= size())
    throw UserError("token index " + std::to_string(index) + " outside shard " + path_.string());
  return info_.dtype_bytes == 2 ? get<uint16_t>(payload_, static_cast<size_t>(index) * 2)
                                : get<uint32_t>(payload_, static_cast<size_t>(index) * 4);
}

void TokenShard::copy(int64_t start, int64_t count, int64_t* out) const {
  check_user(start >= 0 && count >= 0 && start + count <= size(),
             "token range [" + std::to_string(start) + ", " + std::to_string(start + count) +
                 ") outside shard " + path_.string() + " of " + std::to_string(size()) + " tokens");
  const unsigned char* base = payload_ + static_cast<size_t>(start) * info_.dtype_bytes;
  if (info_.dtype_bytes == 2) {
    for (int64_t i = 0; i < count; ++i) out[i] = get<uint16_t>(base, static_cast<size_t>(i) * 2);
  } else {
    for (int64_t i = 0; i < count; ++i) out[i] = get<uint32_t>(base, static_cast<size_t>(i) * 4);
  }
}

}  // namespace attnlab
