// Token shard format: round trip in both dtypes, and every damage case is a UserError naming
// the file (truncation, flipped payload/header byte, wrong tokenizer, not a shard).
#include "data/token_shard.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/error.h"
#include "data_test_support.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

fs::path write_sample(const std::string& name, uint64_t vocab, std::vector<int32_t>* tokens) {
  tokens->clear();
  for (int32_t i = 0; i < 1000; ++i)
    tokens->push_back(static_cast<int32_t>((i * 7919) % static_cast<int32_t>(vocab)));
  ShardInfo info;
  info.vocab_size = vocab;
  info.utf8_bytes = 4321;
  info.document_count = 3;
  info.fingerprint = "test-tok";
  const fs::path path = test::temp_dir() / "shards" / name;
  write_token_shard(path, *tokens, info);
  return path;
}

void expect_error_naming(const fs::path& path, const std::string& fingerprint,
                         const std::string& fragment) {
  try {
    TokenShard::open(path, fingerprint);
    FAIL() << "expected UserError for " << path;
  } catch (const UserError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
  }
}

void flip_byte(const fs::path& path, std::streamoff offset) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(offset);
  char c;
  file.get(c);
  file.seekp(offset);
  file.put(static_cast<char>(c ^ 0x5A));
}

TEST(TokenShard, RoundTripsBothDtypes) {
  for (uint64_t vocab : {260ull, 50259ull, 70000ull}) {
    std::vector<int32_t> tokens;
    const fs::path path = write_sample("rt_" + std::to_string(vocab) + ".bin", vocab, &tokens);
    const auto shard = TokenShard::open(path, "test-tok");
    EXPECT_EQ(shard->info().dtype_bytes, vocab <= 65536 ? 2u : 4u);
    EXPECT_EQ(fs::file_size(path), kShardHeaderBytes + tokens.size() * shard->info().dtype_bytes);
    EXPECT_EQ(shard->size(), 1000);
    EXPECT_EQ(shard->info().utf8_bytes, 4321u);
    EXPECT_EQ(shard->info().document_count, 3u);
    EXPECT_EQ(shard->info().vocab_size, vocab);
    EXPECT_EQ(shard->info().fingerprint, "test-tok");
    std::vector<int64_t> copied(tokens.size());
    shard->copy(0, shard->size(), copied.data());
    for (size_t i = 0; i < tokens.size(); ++i) {
      ASSERT_EQ(copied[i], tokens[i]);
      ASSERT_EQ(shard->token(static_cast<int64_t>(i)), tokens[i]);
    }
    EXPECT_THROW(shard->copy(990, 11, copied.data()), UserError);
    EXPECT_THROW(shard->token(1000), UserError);
  }
}

TEST(TokenShard, TokenOutsideVocabularyIsRejectedOnWrite) {
  ShardInfo info;
  info.vocab_size = 10;
  info.fingerprint = "x";
  EXPECT_THROW(write_token_shard(test::temp_dir() / "shards" / "bad.bin", {1, 10}, info),
               UserError);
}

TEST(TokenShard, TruncatedShardIsAUserErrorNamingTheFile) {
  std::vector<int32_t> tokens;
  const fs::path path = write_sample("truncated.bin", 260, &tokens);
  fs::resize_file(path, fs::file_size(path) - 2);
  expect_error_naming(path, "test-tok", "truncated");
  fs::resize_file(path, 100);  // not even a header
  expect_error_naming(path, "test-tok", "truncated");
}

TEST(TokenShard, FlippedPayloadByteIsDetected) {
  std::vector<int32_t> tokens;
  const fs::path path = write_sample("flip_payload.bin", 260, &tokens);
  flip_byte(path, kShardHeaderBytes + 777);
  expect_error_naming(path, "test-tok", "checksum");
}

TEST(TokenShard, FlippedHeaderByteIsDetected) {
  std::vector<int32_t> tokens;
  const fs::path path = write_sample("flip_header.bin", 260, &tokens);
  flip_byte(path, 25);  // inside utf8_bytes, which no other check covers
  expect_error_naming(path, "test-tok", "checksum");
}

TEST(TokenShard, WrongTokenizerIsAUserErrorNamingBoth) {
  std::vector<int32_t> tokens;
  const fs::path path = write_sample("tok.bin", 260, &tokens);
  expect_error_naming(path, "gpt2-12345678", "test-tok");
  EXPECT_NO_THROW(TokenShard::open(path));  // no expectation: any tokenizer
}

TEST(TokenShard, NotAShardOrMissing) {
  const fs::path path = test::temp_dir() / "shards" / "text.bin";
  fs::create_directories(path.parent_path());
  std::ofstream(path) << std::string(400, 'x');
  expect_error_naming(path, "", "not an attnlab token shard");
  expect_error_naming(test::temp_dir() / "shards" / "missing.bin", "", "cannot open");
}

}  // namespace
}  // namespace attnlab
