// Data sharding for data parallelism (issue #7): at every step the union of N ranks' batches of B
// rows is exactly the batch of N*B rows one process draws with the same seed (so N ranks x B
// train like 1 process x N*B), while the ranks never read the same window twice in an epoch.
// Checked for both samplers on a shard whose token i is i, so a row's first token is its start.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "data/window_sampler.h"

namespace attnlab {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kSeqLen = 8;

std::shared_ptr<const TokenShard> counting_shard(int64_t windows) {
  const int64_t n = windows * kSeqLen + 1;
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) tokens[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  ShardInfo info;
  info.vocab_size = static_cast<uint64_t>(n);
  info.fingerprint = "count";
  const fs::path path =
      fs::temp_directory_path() /
      ("attnlab_sharding_" + std::to_string(::getpid()) + "_" + std::to_string(windows) + ".bin");
  write_token_shard(path, tokens, info);
  auto shard = TokenShard::open(path);
  fs::remove(path);  // the open shard keeps its mapping; nothing is left in /tmp
  return shard;
}

std::multiset<int64_t> starts(const Batch& batch) {
  std::multiset<int64_t> out;
  for (int64_t r = 0; r < batch.input.size(0); ++r) out.insert(batch.input[r][0].item<int64_t>());
  return out;
}

std::unique_ptr<WindowSampler> make(const std::string& kind,
                                    std::shared_ptr<const TokenShard> shard, int64_t batch,
                                    int64_t rank, int64_t world) {
  SamplerOptions options;
  options.batch_size = batch;
  options.seq_len = kSeqLen;
  options.seed = 77;
  options.rank = rank;
  options.world_size = world;
  return sampler_registry().get(kind)(std::move(shard), options);
}

// `steps` steps of `world` ranks x `batch` rows against one process x world*batch rows.
void expect_union_equals_single_batch(const std::string& kind, int64_t windows, int64_t world,
                                      int64_t batch, int64_t steps) {
  SCOPED_TRACE(kind + " sampler, " + std::to_string(world) + " ranks");
  const auto shard = counting_shard(windows);
  auto single = make(kind, shard, world * batch, 0, 1);
  std::vector<std::unique_ptr<WindowSampler>> ranks;
  for (int64_t r = 0; r < world; ++r) ranks.push_back(make(kind, shard, batch, r, world));
  for (int64_t step = 0; step < steps; ++step) {
    std::multiset<int64_t> merged;
    for (auto& rank : ranks) {
      const auto mine = starts(rank->next());
      merged.insert(mine.begin(), mine.end());
    }
    ASSERT_EQ(merged, starts(single->next())) << "step " << step;
    for (auto& rank : ranks) EXPECT_EQ(rank->state(), ranks[0]->state());  // lockstep
  }
}

TEST(DataSharding, RanksTogetherDrawTheSingleProcessBatch) {
  // Sequential: 240 windows, 2 ranks x 6 rows = 12 per step, 30 steps = 1.5 epochs.
  expect_union_equals_single_batch("sequential", 240, 2, 6, 30);
  expect_union_equals_single_batch("sequential", 240, 3, 4, 30);
  expect_union_equals_single_batch("random", 240, 2, 6, 30);
  expect_union_equals_single_batch("random", 240, 4, 3, 30);
}

TEST(DataSharding, NoWindowTwicePerEpochAcrossRanks) {
  // 101 windows over 3 ranks: 33 each per epoch, the remainder skipped.
  const auto shard = counting_shard(101);
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    std::set<int64_t> seen;
    for (int64_t r = 0; r < 3; ++r) {
      auto sampler = make("sequential", shard, 11, r, 3);
      for (int64_t skip = 0; skip < 3 * epoch; ++skip) sampler->next();
      for (int i = 0; i < 3; ++i)  // 3 batches of 11 = this rank's 33 windows of the epoch
        for (int64_t s : starts(sampler->next())) EXPECT_TRUE(seen.insert(s).second) << s;
    }
    EXPECT_EQ(seen.size(), 99u) << "epoch " << epoch;
  }
  // Random windows: the ranks' draws are distinct positions of one stream, so two ranks only
  // meet where the stream itself repeats; over 50 draws of 2 ranks the rows are not all equal.
  auto r0 = make("random", shard, 50, 0, 2), r1 = make("random", shard, 50, 1, 2);
  EXPECT_NE(starts(r0->next()), starts(r1->next()));
}

}  // namespace
}  // namespace attnlab
