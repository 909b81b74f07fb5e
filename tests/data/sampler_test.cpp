// Samplers: windows are shifted input/target pairs from the shard, sampling is deterministic in
// the seed, state()/load_state() resume bitwise, ranks read disjoint windows, bos_aligned windows
// start at document starts, eval batches are fixed.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <set>

#include "common/error.h"
#include "data/window_sampler.h"
#include "data_test_support.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

// A shard whose token i is i % 50000: a window's first token tells where it starts.
std::shared_ptr<const TokenShard> counting_shard(int64_t n, const std::string& name) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) tokens[static_cast<size_t>(i)] = static_cast<int32_t>(i % 50000);
  ShardInfo info;
  info.vocab_size = 50000;
  info.fingerprint = "count";
  const fs::path path = test::temp_dir() / "sampler" / name;
  write_token_shard(path, tokens, info);
  return TokenShard::open(path);
}

SamplerOptions options(int64_t seed, int64_t rank = 0, int64_t world = 1) {
  SamplerOptions o;
  o.batch_size = 4;
  o.seq_len = 16;
  o.seed = static_cast<uint64_t>(seed);
  o.rank = rank;
  o.world_size = world;
  return o;
}

void expect_same(const Batch& a, const Batch& b) {
  EXPECT_TRUE(torch::equal(a.input, b.input));
  EXPECT_TRUE(torch::equal(a.target, b.target));
}

// Checks each row is a contiguous window and target is input shifted by one; returns starts.
std::vector<int64_t> window_starts(const Batch& batch) {
  EXPECT_EQ(batch.input.dtype(), torch::kLong);
  EXPECT_EQ(batch.input.device(), torch::Device(torch::kCPU));
  std::vector<int64_t> starts;
  for (int64_t r = 0; r < batch.input.size(0); ++r) {
    const auto x = batch.input[r], y = batch.target[r];
    const int64_t start = x[0].item<int64_t>();
    EXPECT_TRUE(torch::equal(x, torch::arange(start, start + x.size(0), torch::kLong)));
    EXPECT_TRUE(torch::equal(y, x + 1));
    starts.push_back(start);
  }
  return starts;
}

template <typename S>
void check_resume(std::shared_ptr<const TokenShard> shard, int64_t steps_before) {
  S original(shard, options(5));
  for (int64_t i = 0; i < steps_before; ++i) original.next();
  const std::string saved = original.state();
  S resumed(shard, options(5));
  resumed.load_state(saved);
  for (int i = 0; i < 20; ++i) expect_same(original.next(), resumed.next());
  EXPECT_EQ(original.state(), resumed.state());
}

TEST(RandomWindowSampler, WindowsAreShiftedPairsAndSeedDeterministic) {
  const auto shard = counting_shard(4000, "random.bin");
  RandomWindowSampler a(shard, options(1)), b(shard, options(1)), c(shard, options(2));
  std::set<int64_t> starts;
  bool differs = false;
  for (int i = 0; i < 50; ++i) {
    const Batch batch_a = a.next(), batch_b = b.next(), batch_c = c.next();
    expect_same(batch_a, batch_b);
    differs = differs || !torch::equal(batch_a.input, batch_c.input);
    for (int64_t s : window_starts(batch_a)) {
      EXPECT_GE(s, 0);
      EXPECT_LE(s + 16 + 1, 4000);
      starts.insert(s);
    }
  }
  EXPECT_TRUE(differs);
  EXPECT_GT(starts.size(), 150u);  // 200 draws over 3984 offsets: few repeats
}

TEST(RandomWindowSampler, CoversOffsetsUniformly) {
  // 20 possible offsets, 20000 draws: every offset appears, none far from 1000.
  const auto shard = counting_shard(36, "tiny_random.bin");
  RandomWindowSampler sampler(shard, options(3));
  std::map<int64_t, int> counts;
  for (int i = 0; i < 5000; ++i)
    for (int64_t s : window_starts(sampler.next())) ++counts[s];
  EXPECT_EQ(counts.size(), 20u);
  for (auto [start, count] : counts) {
    EXPECT_GT(count, 850) << start;
    EXPECT_LT(count, 1150) << start;
  }
}

TEST(RandomWindowSampler, StateResumesBitwise) {
  check_resume<RandomWindowSampler>(counting_shard(4000, "random_resume.bin"), 7);
}

TEST(RandomWindowSampler, RanksUseDifferentStreams) {
  const auto shard = counting_shard(4000, "random_ranks.bin");
  RandomWindowSampler r0(shard, options(1, 0, 2)), r1(shard, options(1, 1, 2));
  EXPECT_FALSE(torch::equal(r0.next().input, r1.next().input));
  EXPECT_EQ(r0.state(), r1.state());  // lockstep: rank 0's state restores every rank
}

TEST(SequentialSampler, EachEpochVisitsEveryWindowOnceInShuffledOrder) {
  const auto shard = counting_shard(16 * 40 + 1, "seq.bin");  // exactly 40 windows
  SequentialSampler sampler(shard, options(9));
  ASSERT_EQ(sampler.windows(), 40);
  std::vector<int64_t> epoch0, epoch1;
  for (int i = 0; i < 20; ++i) {  // 20 batches of 4 = two epochs
    for (int64_t s : window_starts(sampler.next())) {
      EXPECT_EQ(s % 16, 0);
      (epoch0.size() < 40 ? epoch0 : epoch1).push_back(s / 16);
    }
  }
  EXPECT_EQ(std::set<int64_t>(epoch0.begin(), epoch0.end()).size(), 40u);
  EXPECT_EQ(std::set<int64_t>(epoch1.begin(), epoch1.end()).size(), 40u);
  EXPECT_NE(epoch0, epoch1);  // reshuffled per epoch
  std::vector<int64_t> identity(40);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(epoch0, identity);
  EXPECT_EQ(sampler.epoch(), 1);
}

TEST(SequentialSampler, RanksPartitionTheWindowsOfEveryEpoch) {
  const auto shard = counting_shard(16 * 100 + 5, "seq_ranks.bin");  // 100 windows
  const int64_t world = 3;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::set<int64_t> seen;
    int64_t total = 0;
    for (int64_t rank = 0; rank < world; ++rank) {
      SequentialSampler sampler(shard, options(4, rank, world));
      ASSERT_EQ(sampler.windows_per_rank(), 33);
      for (int64_t p = 0; p < sampler.windows_per_rank(); ++p, ++total)
        seen.insert(sampler.window_at(epoch, p));
    }
    EXPECT_EQ(total, 99);
    EXPECT_EQ(seen.size(), 99u) << "a window was read twice in epoch " << epoch;
  }
  // The batches the ranks actually produce over one epoch are disjoint too.
  std::set<int64_t> starts;
  for (int64_t rank = 0; rank < world; ++rank) {
    SamplerOptions o = options(4, rank, world);
    o.batch_size = 11;  // 3 batches of 11 = one epoch of 33 windows
    SequentialSampler sampler(shard, o);
    for (int i = 0; i < 3; ++i)
      for (int64_t s : window_starts(sampler.next())) EXPECT_TRUE(starts.insert(s).second);
  }
  EXPECT_EQ(starts.size(), 99u);
}

TEST(SequentialSampler, StateResumesBitwiseAcrossEpochs) {
  const auto shard = counting_shard(16 * 30 + 1, "seq_resume.bin");
  check_resume<SequentialSampler>(shard, 3);
  check_resume<SequentialSampler>(shard, 17);  // mid second epoch
}

TEST(Samplers, StateMismatchesAndBadOptionsAreUserErrors) {
  const auto shard = counting_shard(16 * 30 + 1, "seq_errors.bin");
  SequentialSampler seq(shard, options(5));
  RandomWindowSampler rnd(shard, options(5));
  EXPECT_THROW(seq.load_state(rnd.state()), UserError);
  EXPECT_THROW(rnd.load_state(seq.state()), UserError);
  EXPECT_THROW(rnd.load_state("random v1 seed=5 draws=abc"), UserError);
  SequentialSampler other_seed(shard, options(6));
  EXPECT_THROW(other_seed.load_state(seq.state()), UserError);
  SequentialSampler two_ranks(shard, options(5, 0, 2));
  EXPECT_THROW(two_ranks.load_state(seq.state()), UserError);
  SamplerOptions long_windows = options(5);
  long_windows.seq_len = 10000;
  EXPECT_THROW(SequentialSampler(shard, long_windows), UserError);
  EXPECT_THROW(RandomWindowSampler(shard, long_windows), UserError);
  EXPECT_THROW(SequentialSampler(shard, options(5, 2, 2)), UserError);
}

TEST(Samplers, MadeFromConfig) {
  const auto shard = counting_shard(4000, "config.bin");
  YAML::Node config = test::data_config();
  config["data"]["sampler"] = "sequential";
  auto sampler = make_sampler(config, shard, 1, 2);
  const Batch batch = sampler->next();
  EXPECT_EQ(batch.input.sizes(), (std::vector<int64_t>{4, 32}));
  EXPECT_NE(dynamic_cast<SequentialSampler*>(sampler.get()), nullptr);
  config["data"]["sampler"] = "shuffled";
  EXPECT_THROW(make_sampler(config, shard), UserError);
}

// Documents of varying length separated by EOS (id 9): doc d is d+3 tokens 100d+1, 100d+2, ...
std::shared_ptr<const TokenShard> document_shard(int64_t documents, const std::string& name,
                                                 std::vector<int64_t>* starts) {
  std::vector<int32_t> tokens;
  for (int64_t d = 0; d < documents; ++d) {
    starts->push_back(static_cast<int64_t>(tokens.size()));
    for (int64_t k = 0; k < d % 40 + 3; ++k)
      tokens.push_back(static_cast<int32_t>(100 * d + k + 1));
    tokens.push_back(9);
  }
  ShardInfo info;
  info.vocab_size = 100 * documents + 100;
  info.fingerprint = "docs";
  const fs::path path = test::temp_dir() / "sampler" / name;
  write_token_shard(path, tokens, info);
  return TokenShard::open(path);
}

TEST(Samplers, BosAlignedWindowsStartAtDocumentStartsAndShardAcrossRanks) {
  std::vector<int64_t> doc_starts;
  const auto shard = document_shard(300, "docs.bin", &doc_starts);
  SamplerOptions o = options(11);
  o.document_separator = 9;
  DocumentAlignedSampler sampler(shard, o);
  // Every document start that leaves room for T + 1 tokens, and nothing else.
  std::vector<int64_t> expected;
  for (int64_t start : doc_starts)
    if (start + o.seq_len + 1 <= shard->size()) expected.push_back(start);
  EXPECT_EQ(sampler.starts(), expected);
  std::set<int64_t> seen;
  for (int step = 0; step < 50; ++step) {
    const Batch batch = sampler.next();
    for (int64_t r = 0; r < batch.input.size(0); ++r) {
      const int64_t first = batch.input[r][0].item<int64_t>();
      EXPECT_EQ(first % 100, 1) << "row " << r << " starts inside a document";
      EXPECT_TRUE(torch::equal(batch.input[r].slice(0, 1), batch.target[r].slice(0, 0, -1)));
      seen.insert(first);
    }
  }
  EXPECT_GT(seen.size(), 100u);  // draws spread over the documents

  // Resume: state() then load_state() on a fresh sampler continues identically.
  DocumentAlignedSampler resumed(shard, o);
  resumed.load_state(sampler.state());
  expect_same(resumed.next(), sampler.next());
  // Two ranks with batch B together read what one process with batch 2B reads.
  SamplerOptions one = o, r0 = options(11, 0, 2), r1 = options(11, 1, 2);
  one.batch_size = 8;
  r0.document_separator = r1.document_separator = 9;
  DocumentAlignedSampler single(shard, one), rank0(shard, r0), rank1(shard, r1);
  for (int step = 0; step < 3; ++step) {
    const Batch all = single.next(), a = rank0.next(), b = rank1.next();
    for (int64_t row = 0; row < 4; ++row) {
      EXPECT_TRUE(torch::equal(all.input[2 * row], a.input[row]));
      EXPECT_TRUE(torch::equal(all.input[2 * row + 1], b.input[row]));
    }
  }
  SamplerOptions other_seed = options(12);
  other_seed.document_separator = 9;
  DocumentAlignedSampler wrong(shard, other_seed);
  EXPECT_THROW(wrong.load_state(sampler.state()), UserError);
  EXPECT_THROW(DocumentAlignedSampler(shard, options(11)), UserError);  // no separator given
  YAML::Node config = test::data_config();
  config["data"]["sampler"] = "bos_aligned";
  EXPECT_NE(dynamic_cast<DocumentAlignedSampler*>(make_sampler(config, shard, 0, 1, 9).get()),
            nullptr);
}

SamplerOptions decomposition_options(int64_t rank = 0, int64_t world = 1) {
  SamplerOptions o = options(3, rank, world);
  o.batch_size = 2;
  o.seq_len = 16;
  o.decomposition.min_len(2);
  o.document_separator = 9;
  return o;
}

TEST(DatasetDecomposition, PiecesCoverEveryTargetOnceAndComeFromOneDocument) {
  std::vector<int64_t> doc_starts;
  const auto shard = document_shard(300, "dd.bin", &doc_starts);
  SamplerOptions o = decomposition_options();
  o.decomposition.min_len(1);  // nothing dropped: an exact cover
  DecompositionSampler sampler(shard, o);
  // Every next-token target (token i predicted from i - 1 within a document) exactly once.
  std::vector<int> covered(static_cast<size_t>(shard->size()), 0);
  for (const auto& piece : sampler.pieces()) {
    const int64_t len = int64_t{1} << piece.log2_len;
    EXPECT_LE(len, o.seq_len);
    for (int64_t t = piece.start + 1; t <= piece.start + len; ++t)
      ++covered[static_cast<size_t>(t)];
  }
  doc_starts.push_back(shard->size());
  for (size_t d = 0; d + 1 < doc_starts.size(); ++d) {
    EXPECT_EQ(covered[static_cast<size_t>(doc_starts[d])], 0) << "a document's first token is "
                                                                 "never a target";
    for (int64_t t = doc_starts[d] + 1; t < doc_starts[d + 1]; ++t)
      ASSERT_EQ(covered[static_cast<size_t>(t)], 1) << "token " << t << " of document " << d;
  }
  // Largest pieces first within a document: 3 + k tokens -> e.g. 16, 8, 4 ... (binary).
  const auto& first = sampler.pieces().front();
  EXPECT_EQ(first.start, 0);
  EXPECT_EQ(first.log2_len, 1);  // document 0 has 3 + 1 tokens (EOS included): 3 targets = 2 + 1

  // Every batch: one bucket, B x seq_len / len rows, windows inside one document, shifted
  // targets; constant tokens per step; the curriculum goes from short to long.
  DecompositionSampler training(shard, decomposition_options());
  int64_t previous_len = 0;
  for (int64_t b = 0; b < training.batches_per_epoch(); ++b) {
    const Batch batch = training.next();
    const int64_t len = batch.input.size(1);
    EXPECT_EQ(batch.input.size(0) * len, 2 * 16) << "batch " << b;
    EXPECT_GE(len, previous_len) << "short_to_long went back to a shorter bucket";
    previous_len = len;
    for (int64_t r = 0; r < batch.input.size(0); ++r) {
      EXPECT_TRUE(torch::equal(batch.input[r].slice(0, 1), batch.target[r].slice(0, 0, -1)));
      const auto x = batch.input[r];
      // One document: no separator inside the input, and ids from one document (100d + k).
      EXPECT_EQ((x == 9).sum().item<int64_t>(), 0) << "a separator inside a sequence";
      const auto docs = x.div(100, "floor");
      EXPECT_TRUE(torch::equal(docs, torch::full_like(docs, docs[0].item<int64_t>())))
          << "a sequence spans two documents";
    }
  }
}

TEST(DatasetDecomposition, ResumesAndShardsAcrossRanksAndCurricula) {
  std::vector<int64_t> doc_starts;
  const auto shard = document_shard(300, "dd2.bin", &doc_starts);
  DecompositionSampler a(shard, decomposition_options());
  for (int i = 0; i < a.batches_per_epoch() + 3; ++i) a.next();  // into the second epoch
  DecompositionSampler b(shard, decomposition_options());
  b.load_state(a.state());
  for (int i = 0; i < 5; ++i) expect_same(a.next(), b.next());

  SamplerOptions doubled = decomposition_options();
  doubled.batch_size = 4;
  DecompositionSampler one(shard, doubled), rank0(shard, decomposition_options(0, 2)),
      rank1(shard, decomposition_options(1, 2));
  for (int step = 0; step < 6; ++step) {
    const Batch all = one.next(), x = rank0.next(), y = rank1.next();
    ASSERT_EQ(all.input.size(0), 2 * x.input.size(0));
    for (int64_t row = 0; row < x.input.size(0); ++row) {
      EXPECT_TRUE(torch::equal(all.input[2 * row], x.input[row]));
      EXPECT_TRUE(torch::equal(all.input[2 * row + 1], y.input[row]));
    }
  }
  // cyclic: as many short-to-long rounds as asked (the length drops cycles - 1 times).
  SamplerOptions cyclic = decomposition_options();
  cyclic.decomposition.curriculum("cyclic");
  cyclic.decomposition.cycles(3);
  DecompositionSampler c(shard, cyclic);
  int drops = 0;
  int64_t last = 0;
  for (int64_t i = 0; i < c.batches_per_epoch(); ++i) {
    const int64_t len = c.next().input.size(1);
    drops += len < last;
    last = len;
  }
  EXPECT_EQ(drops, 2);
  SamplerOptions bad = decomposition_options();
  bad.seq_len = 24;
  EXPECT_THROW(DecompositionSampler(shard, bad), UserError);  // not a power of two
  bad = decomposition_options();
  bad.decomposition.curriculum("long_to_short");
  EXPECT_THROW(DecompositionSampler(shard, bad), UserError);
}

TEST(EvalBatches, ConsecutiveWindowsFromTheStartAndStable) {
  const auto shard = counting_shard(16 * 25 + 1, "eval.bin");  // 25 windows -> 6 batches of 4
  const auto batches = eval_batches(*shard, 100, 4, 16);
  ASSERT_EQ(batches.size(), 6u);
  for (size_t i = 0; i < batches.size(); ++i) {
    const auto starts = window_starts(batches[i]);
    for (size_t r = 0; r < starts.size(); ++r)
      EXPECT_EQ(starts[r], static_cast<int64_t>((i * 4 + r) * 16));
  }
  const auto again = eval_batches(*shard, 3, 4, 16);
  ASSERT_EQ(again.size(), 3u);
  for (size_t i = 0; i < again.size(); ++i) expect_same(again[i], batches[i]);
  // Two ranks split the 6 batches round-robin.
  const auto rank1 = eval_batches(*shard, 100, 4, 16, 1, 2);
  ASSERT_EQ(rank1.size(), 3u);
  expect_same(rank1[0], batches[1]);
  expect_same(rank1[2], batches[5]);
  EXPECT_THROW(eval_batches(*shard, 5, 4, 1000), UserError);
}

// data.decomposition binds strictly: a bad key or value is one line naming the dotted key.
TEST(Samplers, DecompositionOptionsNameTheDottedKey) {
  const auto shard = counting_shard(4000, "decomposition_config.bin");
  const auto error_of = [&](const std::string& yaml) -> std::string {
    YAML::Node config = test::data_config();
    config["data"]["decomposition"] = YAML::Load(yaml);
    try {
      make_sampler(config, shard);
    } catch (const UserError& error) {
      return error.what();
    }
    return "";
  };
  EXPECT_EQ(error_of("{cycles: 0}"), "data.decomposition.cycles: expected a number >= 1, got 0");
  EXPECT_EQ(error_of("{curriculum: long_to_short}"),
            "data.decomposition.curriculum: expected one of uniform, short_to_long, cyclic, got "
            "'long_to_short'");
  EXPECT_EQ(error_of("{min_len: short}"), "data.decomposition.min_len: expected int, got 'short'");
  EXPECT_EQ(error_of("{cycle: 2}")
                .rfind("data.decomposition.cycle: data.decomposition has no option 'cycle'", 0),
            0u);
  EXPECT_EQ(error_of("{min_len: 16, curriculum: cyclic, cycles: 2}"), "");  // random ignores them
}

}  // namespace
}  // namespace attnlab
