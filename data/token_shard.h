// Token shards: one split of a tokenised corpus in a flat binary file that is memory-mapped for
// reading (nanoGPT's train.bin/val.bin, plus a self-describing, checksummed header).
//
// File layout (little-endian): a 256-byte header, then token_count tokens of dtype_bytes each
// (uint16 when the vocabulary fits in 65536 ids, else uint32).
//   0 magic "ATNLTOK\0" | 8 u32 version | 12 u32 dtype_bytes | 16 u64 token_count
//   24 u64 utf8_bytes (text bytes of the split's documents, for bits per byte)
//   32 u64 document_count | 40 u64 vocab_size | 48 u32 payload CRC32 | 52 u32 header CRC32
//   56 char[64] tokenizer fingerprint (NUL padded) | 120 u32 role (1 train, 2 val, 0 unspecified)
//   124 u32 zero | 128 u64 corpus hash (of the text the tokens came from; 0 unknown) | 136..255
//   zero
// The header CRC covers bytes 0..255 with its own field zeroed. Truncation, a flipped byte, a
// different tokenizer, corpus or role (train.bin replaced by val.bin), or a token id outside the
// vocabulary (checked on open, before any id reaches an embedding) make open() throw a UserError
// naming the file. Version 1 shards (no role or corpus hash) are rejected: prepare rebuilds them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace attnlab {

// Which split a shard holds; recorded so one split's file cannot stand in for the other's.
enum class ShardRole : uint32_t { kUnspecified = 0, kTrain = 1, kVal = 2 };
std::string shard_role_name(ShardRole role);

struct ShardInfo {
  uint32_t version = 2;
  uint32_t dtype_bytes = 2;
  uint64_t token_count = 0;
  uint64_t utf8_bytes = 0;
  uint64_t document_count = 0;
  uint64_t vocab_size = 0;
  std::string fingerprint;  // the tokenizer's, at most 63 bytes
  ShardRole role = ShardRole::kUnspecified;
  uint64_t corpus_hash = 0;  // content hash of the corpus text (0 = not recorded)
};

// What the reader requires of a shard; empty/zero fields accept anything.
struct ShardExpectation {
  std::string fingerprint;  // the tokenizer's fingerprint
  uint64_t vocab_size = 0;  // the tokenizer's vocabulary size
  ShardRole role = ShardRole::kUnspecified;
  uint64_t corpus_hash = 0;
};

constexpr uint32_t kShardFormatVersion = 2;
constexpr size_t kShardHeaderBytes = 256;

// Writes `tokens` to `path` atomically (temporary file, fsync, rename). info.token_count and
// info.dtype_bytes are derived from `tokens` and info.vocab_size.
void write_token_shard(const std::filesystem::path& path, const std::vector<int32_t>& tokens,
                       ShardInfo info);

// Writes a shard a piece at a time, so a large split never has to be held in memory: the header
// is written by finish() once the token count and payload checksum are known. The tokens go to a
// temporary file that finish() renames into place (atomically); a writer destroyed before
// finish() removes it. info.token_count and info.dtype_bytes are derived as for write_token_shard;
// utf8_bytes and document_count may be set through info() before finish().
class TokenShardWriter {
 public:
  TokenShardWriter(std::filesystem::path path, ShardInfo info);
  ~TokenShardWriter();
  TokenShardWriter(const TokenShardWriter&) = delete;
  TokenShardWriter& operator=(const TokenShardWriter&) = delete;

  // Appends ids; each must be in [0, info.vocab_size) (UserError naming the shard otherwise).
  void append(const int32_t* tokens, size_t count);
  void append(const std::vector<int32_t>& tokens) { append(tokens.data(), tokens.size()); }
  ShardInfo& info() { return info_; }
  uint64_t token_count() const { return info_.token_count; }
  // Writes the header, fsyncs and renames the file into place; returns the final header fields.
  const ShardInfo& finish();

 private:
  std::filesystem::path path_;
  std::filesystem::path tmp_;
  ShardInfo info_;
  int fd_ = -1;
  uint32_t crc_ = 0;
};

class TokenShard {
 public:
  // Maps `path` and validates header, size, checksums and that every token id is below the
  // header's vocabulary size; then each non-empty field of `expected` must match the header.
  static std::shared_ptr<const TokenShard> open(const std::filesystem::path& path,
                                                const ShardExpectation& expected);
  // The same with only a tokenizer fingerprint to match (empty: any tokenizer).
  static std::shared_ptr<const TokenShard> open(const std::filesystem::path& path,
                                                const std::string& expected_fingerprint = "");
  ~TokenShard();
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;

  const ShardInfo& info() const { return info_; }
  const std::filesystem::path& path() const { return path_; }
  int64_t size() const { return static_cast<int64_t>(info_.token_count); }
  int64_t token(int64_t index) const;
  // Copies tokens [start, start + count) into `out` as int64 (the model's index type).
  void copy(int64_t start, int64_t count, int64_t* out) const;

 private:
  TokenShard() = default;
  std::filesystem::path path_;
  ShardInfo info_;
  void* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  const unsigned char* payload_ = nullptr;
};

}  // namespace attnlab
