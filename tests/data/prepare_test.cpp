// Corpora, the by-document split and prepare_data: shards hold each document's tokens followed
// by EOS, re-running is a no-op, damaged shards and tokenizer mismatches are UserErrors.
#include "data/prepare.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <set>

#include "common/error.h"
#include "data/corpora/corpus.h"
#include "data/data_cache.h"
#include "data_test_support.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

TEST(Corpus, BrownTagsAreStripped) {
  // Input and expected output are the first sentence of Brown ca01 and its untagged form as
  // produced by sed -E 's#([^ ]+)/[^ ]+#\1#g' (every word/tag becomes word).
  const std::string tagged =
      "\n\n\tThe/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd Friday/nr an/at "
      "investigation/nn of/in Atlanta's/np$ recent/jj primary/nn election/nn produced/vbd ``/`` "
      "no/at evidence/nn ''/'' that/cs any/dti irregularities/nns took/vbd place/nn ./.\n\n";
  EXPECT_EQ(strip_brown_tags(tagged),
            "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent "
            "primary election produced `` no evidence '' that any irregularities took place .\n");
  EXPECT_EQ(strip_brown_tags("1/2/cd inch/nn"), "1/2 inch\n");
}

TEST(Corpus, MobyDickDocumentsAreTheChaptersInOrder) {
  const auto docs = corpus_registry().get("moby_dick")(data_cache_dir(YAML::Node()));
  ASSERT_EQ(docs.size(), 139u);  // contents, etymology, extracts, 135 chapters, epilogue
  EXPECT_EQ(docs[3].name, "moby_dick/chapter_1");
  EXPECT_EQ(docs[3].text.rfind("CHAPTER 1. Loomings.", 0), 0u);
  EXPECT_EQ(docs.back().name, "moby_dick/epilogue");
}

TEST(Corpus, SplitIsByDocumentAndSpreadEvenly) {
  CorpusSpec spec;
  spec.corpora = {"moby_dick"};
  spec.val_fraction = 0.1;
  const CorpusSplit split = load_split(spec, data_cache_dir(YAML::Node()));
  EXPECT_EQ(split.val.size(), 13u);  // floor(139 * 0.1)
  EXPECT_EQ(split.train.size() + split.val.size(), 139u);
  std::set<std::string> train_names;
  for (const auto& doc : split.train) train_names.insert(doc.name);
  for (const auto& doc : split.val) EXPECT_EQ(train_names.count(doc.name), 0u) << doc.name;
  // Evenly spread: documents 9, 19, ..., 129 (0-based) go to validation.
  EXPECT_EQ(split.val.front().name, "moby_dick/chapter_7");
}

TEST(Corpus, LimitsAndCorpusListsAndErrors) {
  YAML::Node config = test::data_config("byte", 5);
  config["data"]["corpus"] = YAML::Load("[moby_dick, sotu]");
  config["data"]["max_bytes"] = 20000;
  const CorpusSplit split = load_split(corpus_spec(config), data_cache_dir(config));
  size_t moby = 0, sotu = 0, moby_docs = 0;
  for (const auto* part : {&split.train, &split.val}) {
    for (const auto& doc : *part) {
      const bool is_moby = doc.name.rfind("moby_dick/", 0) == 0;
      (is_moby ? moby : sotu) += doc.text.size();
      moby_docs += is_moby;
    }
  }
  EXPECT_LE(moby, 20000u);
  EXPECT_GT(moby, 19990u);  // cut inside a document, at a character boundary
  EXPECT_LE(sotu, 20000u);
  EXPECT_LE(moby_docs, 5u);
  EXPECT_GE(split.val.size(), 2u);  // at least one per corpus

  config["data"]["corpus"] = "shakespeare";
  EXPECT_THROW(corpus_spec(config), UserError);
  config["data"]["corpus"] = "moby_dick";
  config["data"]["val_fraction"] = 1.5;
  EXPECT_THROW(corpus_spec(config), UserError);
}

TEST(Prepare, WritesShardsWithEosBetweenDocumentsAndIsIdempotent) {
  const YAML::Node config = test::data_config("byte", 12);
  const PreparedData first = prepare_data(config);
  EXPECT_TRUE(first.built);
  EXPECT_TRUE(fs::exists(first.dir / "meta.json"));
  EXPECT_EQ(first.dir.parent_path(), test::temp_dir() / "tokens");

  // Independent expectation: byte tokens = the documents' bytes, each followed by EOS (257).
  const CorpusSplit split = load_split(corpus_spec(config), data_cache_dir(config));
  std::vector<int64_t> expected;
  uint64_t bytes = 0;
  for (const auto& doc : split.train) {
    for (unsigned char c : doc.text) expected.push_back(c);
    expected.push_back(257);
    bytes += doc.text.size();
  }
  ASSERT_EQ(first.train->size(), static_cast<int64_t>(expected.size()));
  std::vector<int64_t> stored(expected.size());
  first.train->copy(0, first.train->size(), stored.data());
  EXPECT_EQ(stored, expected);
  EXPECT_EQ(first.train->info().utf8_bytes, bytes);
  EXPECT_EQ(first.train->info().document_count, split.train.size());
  EXPECT_EQ(first.val->info().document_count, split.val.size());
  const double val_bytes = static_cast<double>(first.val->info().utf8_bytes);
  EXPECT_DOUBLE_EQ(first.val_bytes_per_token(), val_bytes / (val_bytes + split.val.size()));

  const auto written = fs::last_write_time(first.dir / "train.bin");
  const PreparedData second = prepare_data(config);
  EXPECT_FALSE(second.built);
  EXPECT_EQ(second.dir, first.dir);
  EXPECT_EQ(fs::last_write_time(first.dir / "train.bin"), written);
}

TEST(Prepare, SettingsAndTokenizerPickTheShardFolder) {
  YAML::Node config = test::data_config("byte", 12);
  const fs::path a = prepare_data(config).dir;
  config["data"]["max_documents"] = 8;
  const fs::path b = prepare_data(config).dir;
  config["tokenizer"]["name"] = "gpt2";
  const PreparedData gpt2 = prepare_data(config);
  EXPECT_NE(a, b);
  EXPECT_NE(b, gpt2.dir);
  EXPECT_EQ(gpt2.train->info().dtype_bytes, 2u);                // 50259 ids fit in uint16
  EXPECT_EQ(gpt2.train->token(gpt2.train->size() - 1), 50256);  // EOS ends the stream
  EXPECT_GT(gpt2.val_bytes_per_token(), 3.0);  // GPT-2 BPE packs English into ~4 bytes/token
}

TEST(Prepare, CorruptedShardIsAUserErrorNamingTheFile) {
  YAML::Node config = test::data_config("byte", 6);
  const PreparedData data = prepare_data(config);
  const fs::path val = data.dir / "val.bin";
  fs::resize_file(val, fs::file_size(val) - 1);
  try {
    prepare_data(config);
    FAIL() << "expected UserError";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find(val.string()), std::string::npos) << error.what();
  }
  fs::remove_all(data.dir);  // deleting the folder rebuilds it
  EXPECT_TRUE(prepare_data(config).built);
}

// A prepare killed with kill -9 left *.bin.tmp<pid> files that no later run removed, and one
// killed between the shard renames and meta.json left no meta.json while prepare said "up to
// date". The next prepare of the folder removes the temporaries and, without a complete
// meta.json, writes the shards again.
TEST(Prepare, AKilledPrepareIsRedoneAndItsTemporariesRemoved) {
  YAML::Node config = test::data_config("byte", 8);
  const PreparedData first = prepare_data(config);
  ASSERT_TRUE(first.built);
  const std::vector<std::string> leftovers = {"train.bin.tmp123456", "val.bin.tmp99",
                                              "meta.json.tmp7", "all.bin"};
  for (const auto& name : leftovers) std::ofstream(first.dir / name) << "partial";
  fs::remove(first.dir / "meta.json");
  const PreparedData again = prepare_data(config);
  EXPECT_TRUE(again.built) << "no meta.json, yet the shards counted as up to date";
  EXPECT_TRUE(fs::exists(first.dir / "meta.json"));
  for (const auto& name : leftovers) EXPECT_FALSE(fs::exists(first.dir / name)) << name;
  EXPECT_FALSE(prepare_data(config).built);

  for (const std::string damaged : {"{\"train\": ", "[]", "{}"}) {
    std::ofstream(first.dir / "meta.json", std::ios::trunc) << damaged;
    EXPECT_TRUE(prepare_data(config).built) << damaged;
  }
  EXPECT_FALSE(prepare_data(config).built);
}

TEST(Prepare, ShardFromAnotherTokenizerIsRejected) {
  YAML::Node config = test::data_config("byte", 6);
  const PreparedData data = prepare_data(config);
  config["tokenizer"]["name"] = "gpt2";
  const auto gpt2 = load_tokenizer(config);
  try {
    TokenShard::open(data.dir / "train.bin", gpt2->fingerprint());
    FAIL() << "expected UserError";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find("byte-v1"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace attnlab
