// Integrity of cached data (issue 17): corpus files are checked against the SHA-256 manifest
// fetch_data.sh records, a BPE tokenizer cache against its content hash, and token shards record
// their role, corpus and tokenizer and have their ids range-checked when opened. Each case is an
// edit that was silently accepted before: it must now be a UserError naming the file.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>
#include <zlib.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "common/error.h"
#include "data/corpora/corpus.h"
#include "data/data_cache.h"
#include "data/hash.h"
#include "data/prepare.h"
#include "data/sha256.h"
#include "data/token_shard.h"
#include "data_test_support.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

// Runs `body`, expecting a UserError whose message holds every fragment.
template <typename Body>
void expect_user_error(Body body, const std::vector<std::string>& fragments) {
  try {
    body();
    FAIL() << "expected a UserError";
  } catch (const UserError& error) {
    const std::string message = error.what();
    for (const auto& fragment : fragments)
      EXPECT_NE(message.find(fragment), std::string::npos)
          << "'" << fragment << "' in: " << message;
  }
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

TEST(Sha256, MatchesTheStandardTestVectors) {
  EXPECT_EQ(Sha256().hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256().update("abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Two blocks, and fed in uneven pieces.
  const std::string text = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(Sha256().update(text.substr(0, 7)).update(text.substr(7)).hex(),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

// A private copy of the Moby Dick dataset (files, .verified, .contents), to damage.
fs::path copy_of_moby_dick(const std::string& name) {
  const fs::path shared = data_cache_dir(YAML::Node());
  ensure_dataset(shared, "moby-dick");  // fetched and manifest-checked
  const fs::path cache = test::temp_dir() / name;
  fs::remove_all(cache);
  fs::create_directories(cache);
  fs::copy(shared / "moby-dick", cache / "moby-dick", fs::copy_options::recursive);
  return cache;
}

// XXH64 (checkpoint tensor hashes): the reference values (xxHash's own, and LLVM's xxHash64 for
// the longer inputs, which cover the 32-byte stripes and every tail length).
TEST(Xxh64, MatchesTheReferenceImplementation) {
  EXPECT_EQ(xxh64("", 0), 0xef46db3751d8e999ULL);
  EXPECT_EQ(xxh64("abc", 3), 0x44bc2cf5ad770999ULL);
  std::string bytes(1000, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + 3);
  EXPECT_EQ(xxh64(bytes.data(), 5), 0xc7608efddb7051feULL);
  EXPECT_EQ(xxh64(bytes.data(), 13), 0xf78b031308f5bfc8ULL);
  EXPECT_EQ(xxh64(bytes.data(), 33), 0x50a7cfc7ba588784ULL);
  EXPECT_EQ(xxh64(bytes.data(), 1000), 0x5f235fa033f1a3fbULL);
  EXPECT_NE(xxh64(bytes.data(), 1000, 1), xxh64(bytes.data(), 1000));
}

TEST(DatasetIntegrity, CorpusFileTruncatedBehindItsMarkerIsAnErrorNamingIt) {
  const fs::path cache = copy_of_moby_dick("cache_truncated");
  CorpusSpec spec;
  spec.corpora = {"moby_dick"};
  spec.max_documents = 5;
  EXPECT_NO_THROW(load_split(spec, cache));  // the intact copy loads
  const fs::path chapter = cache / "moby-dick" / "package" / "data" / "chapter_1.txt";
  fs::resize_file(chapter, fs::file_size(chapter) / 2);
  // A fresh cache folder name: the intact copy was already checked in this process.
  const fs::path moved = test::temp_dir() / "cache_truncated_2";
  fs::remove_all(moved);
  fs::rename(cache, moved);
  expect_user_error([&] { load_split(spec, moved); },
                    {"chapter_1.txt", "SHA-256", "fetch_data.sh moby-dick"});
}

TEST(DatasetIntegrity, MissingCorpusFileIsAnErrorNamingIt) {
  const fs::path cache = copy_of_moby_dick("cache_missing");
  fs::remove(cache / "moby-dick" / "package" / "data" / "chapter_2.txt");
  CorpusSpec spec;
  spec.corpora = {"moby_dick"};
  expect_user_error([&] { load_split(spec, cache); }, {"chapter_2.txt", "missing"});
}

TEST(DatasetIntegrity, CorpusHashFollowsTheManifestAndSettings) {
  const fs::path cache = copy_of_moby_dick("cache_hash");
  CorpusSpec spec;
  spec.corpora = {"moby_dick"};
  const uint64_t original = corpus_hash(spec, cache);
  EXPECT_EQ(corpus_hash(spec, data_cache_dir(YAML::Node())), original);  // same files
  CorpusSpec fewer = spec;
  fewer.max_documents = 3;
  EXPECT_NE(corpus_hash(fewer, cache), original);
  std::ofstream(cache / "moby-dick" / ".contents", std::ios::app)
      << std::string(64, '0') << "  data/extra.txt\n";
  EXPECT_NE(corpus_hash(spec, cache), original);
}

// Recomputes a shard's payload and header CRCs after an edit (as an attacker or a bug would),
// so the checks behind the checksums are what is tested.
void refix_shard_checksums(const fs::path& path) {
  std::string bytes = read_bytes(path);
  auto put = [&](size_t offset, uint32_t value) { std::memcpy(&bytes[offset], &value, 4); };
  put(48, static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()) + 256,
                                      static_cast<uInt>(bytes.size() - 256))));
  put(52, 0);
  put(52, static_cast<uint32_t>(
              crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(256))));
  write_bytes(path, bytes);
}

TEST(ShardIntegrity, TokenIdBeyondTheVocabularyIsRejectedWhenOpened) {
  ShardInfo info;
  info.vocab_size = 300;
  info.fingerprint = "test-tok";
  const fs::path path = test::temp_dir() / "shards" / "ids.bin";
  write_token_shard(path, std::vector<int32_t>(100, 7), info);
  std::string bytes = read_bytes(path);
  const uint16_t beyond = 5000;
  std::memcpy(&bytes[256 + 2 * 42], &beyond, 2);
  write_bytes(path, bytes);
  refix_shard_checksums(path);
  expect_user_error([&] { TokenShard::open(path); },
                    {path.string(), "token id 5000", "position 42", "vocabulary of 300"});
}

TEST(ShardIntegrity, RoleCorpusAndVocabularyAreRecordedAndChecked) {
  ShardInfo info;
  info.vocab_size = 300;
  info.fingerprint = "test-tok";
  info.role = ShardRole::kVal;
  info.corpus_hash = 0xabc;
  const fs::path path = test::temp_dir() / "shards" / "role.bin";
  write_token_shard(path, {1, 2, 3}, info);
  ShardExpectation expected;
  expected.fingerprint = "test-tok";
  expected.vocab_size = 300;
  expected.role = ShardRole::kVal;
  expected.corpus_hash = 0xabc;
  const auto shard = TokenShard::open(path, expected);
  EXPECT_EQ(shard->info().role, ShardRole::kVal);
  EXPECT_EQ(shard->info().corpus_hash, 0xabcu);

  ShardExpectation train = expected;
  train.role = ShardRole::kTrain;
  expect_user_error([&] { TokenShard::open(path, train); },
                    {path.string(), "holds the val split, expected the train split"});
  ShardExpectation other_corpus = expected;
  other_corpus.corpus_hash = 0xdef;
  expect_user_error([&] { TokenShard::open(path, other_corpus); }, {path.string(), "corpus"});
  ShardExpectation other_vocab = expected;
  other_vocab.vocab_size = 301;
  expect_user_error([&] { TokenShard::open(path, other_vocab); },
                    {path.string(), "vocabulary size 300"});
}

TEST(ShardIntegrity, TrainShardReplacedByTheValShardIsRejected) {
  YAML::Node config = test::data_config("byte", 6);
  config["data"]["derived_dir"] = (test::temp_dir() / "swap").string();
  const PreparedData data = prepare_data(config);
  fs::copy_file(data.dir / "val.bin", data.dir / "train.bin", fs::copy_options::overwrite_existing);
  expect_user_error([&] { prepare_data(config); },
                    {(data.dir / "train.bin").string(), "val split"});
}

TEST(ShardIntegrity, ShardsOfAnotherCorpusVersionAreRejected) {
  YAML::Node config = test::data_config("byte", 6);
  config["data"]["derived_dir"] = (test::temp_dir() / "corpus_version").string();
  const PreparedData data = prepare_data(config);
  EXPECT_NE(data.train->info().corpus_hash, 0u);
  EXPECT_EQ(data.train->info().role, ShardRole::kTrain);
  EXPECT_EQ(data.val->info().role, ShardRole::kVal);
  // The same tokens, recorded as built from another version of the corpus files.
  std::vector<int32_t> tokens(static_cast<size_t>(data.train->size()));
  for (size_t i = 0; i < tokens.size(); ++i)
    tokens[i] = static_cast<int32_t>(data.train->token(static_cast<int64_t>(i)));
  ShardInfo info = data.train->info();
  info.corpus_hash ^= 1;
  write_token_shard(data.dir / "train.bin", tokens, info);
  expect_user_error([&] { prepare_data(config); },
                    {(data.dir / "train.bin").string(), "corpus files changed"});
}

TEST(TokenizerCacheIntegrity, EditedBpeCacheIsAnErrorNamingIt) {
  YAML::Node config = test::data_config("bpe");
  config["data"]["derived_dir"] = (test::temp_dir() / "bpe_edit").string();
  const auto original = load_tokenizer(config);
  fs::path model;
  for (const auto& entry : fs::directory_iterator(test::temp_dir() / "bpe_edit" / "tokenizers"))
    if (entry.path().extension() == ".model") model = entry.path();
  ASSERT_FALSE(model.empty());
  EXPECT_EQ(load_tokenizer(config)->fingerprint(), original->fingerprint());  // cache hit
  // The edit: one piece, same length, so the file stays a valid SentencePiece model.
  std::string bytes = read_bytes(model);
  const std::string piece = "\xe2\x96\x81the";
  const size_t at = bytes.find(piece);
  ASSERT_NE(at, std::string::npos) << "the test corpus should teach the piece '_the'";
  bytes[at + 3] = 'T';
  write_bytes(model, bytes);
  expect_user_error([&] { load_tokenizer(config); }, {model.string(), "content hash"});
}

}  // namespace
}  // namespace attnlab
