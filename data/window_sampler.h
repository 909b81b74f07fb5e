// Samplers turn a token shard into training batches (`data.sampler`):
//   random      — nanoGPT-style windows at random offsets: x = t[i:i+T], y = t[i+1:i+T+1];
//   sequential  — epochs over the stream cut into consecutive non-overlapping windows, shuffled
//                 per epoch;
//   bos_aligned — random windows that start where a document starts (position 0 or just after
//                 the EOS that ends the previous document), so position 0 of every window holds
//                 a document's first token: what attention-sink behaviour (and the
//                 decorrelation loss) depends on. Documents too close to the end for a whole
//                 window are never starts;
//   dataset_decomposition — Dataset Decomposition (Pouransari et al. 2024): every document is cut
//                 into sequences of power-of-two lengths (the binary decomposition of its
//                 length, capped at data.seq_len), each sequence from one document only, kept
//                 in one bucket per length; a batch comes from one bucket, with data.batch_size x
//                 data.seq_len / length rows, so every step has the same number of tokens. The
//                 order of the batches of an epoch is the curriculum (see DecompositionSampler).
// Both are deterministic functions of (seed, rank, world_size, position) and expose their
// position as a string for checkpoints. Data parallelism: all ranks read one global stream of
// windows (sequential: the epoch's shuffled order; random: one (seed) draw sequence), rank r
// taking items r, r + N, r + 2N, ... of it. Ranks therefore read disjoint windows (a per-epoch
// partition for sequential), and the union of N ranks' batches of B rows is exactly the batch of
// N*B rows one process draws with the same seed: N ranks x batch B train like 1 process x N*B.
// All ranks advance in lockstep, so the state string is the same on every rank and rank 0's copy
// restores them all. Batches are CPU int64 [B, T]; the trainer moves them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/registry.h"
#include "data/batch.h"
#include "data/data_options.h"
#include "data/token_shard.h"

namespace attnlab {

struct SamplerOptions {
  int64_t batch_size = 1;
  int64_t seq_len = 1;
  uint64_t seed = 0;
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t document_separator = -1;     // the EOS id between documents (bos_aligned needs it)
  DecompositionOptions decomposition;  // dataset_decomposition only
};

class WindowSampler {
 public:
  virtual ~WindowSampler() = default;
  virtual Batch next() = 0;
  // Position/RNG state, e.g. "random v1 seed=1337 draws=4096"; load_state(state()) on a fresh
  // sampler with the same options resumes bitwise identically. A state from a sampler of another
  // kind, seed or window count is a UserError.
  virtual std::string state() const = 0;
  virtual void load_state(const std::string& state) = 0;
};

class RandomWindowSampler : public WindowSampler {
 public:
  RandomWindowSampler(std::shared_ptr<const TokenShard> shard, const SamplerOptions& options);
  Batch next() override;
  std::string state() const override;
  void load_state(const std::string& state) override;
  // Start offset of the window this rank draws at its position `draw` (global draw
  // draw * world_size + rank).
  int64_t offset(int64_t draw) const;

 private:
  std::shared_ptr<const TokenShard> shard_;
  SamplerOptions options_;
  uint64_t stream_;    // stream key derived from the seed, shared by all ranks
  int64_t draws_ = 0;  // windows drawn so far on this rank
};

class DocumentAlignedSampler : public WindowSampler {
 public:
  DocumentAlignedSampler(std::shared_ptr<const TokenShard> shard, const SamplerOptions& options);
  Batch next() override;
  std::string state() const override;
  void load_state(const std::string& state) override;
  const std::vector<int64_t>& starts() const { return starts_; }  // every possible window start
  int64_t offset(int64_t draw) const;  // as RandomWindowSampler::offset, over starts()

 private:
  std::shared_ptr<const TokenShard> shard_;
  SamplerOptions options_;
  std::vector<int64_t> starts_;
  uint64_t stream_;
  int64_t draws_ = 0;
};

// Dataset Decomposition. A document of L tokens (its EOS included) has L - 1 next-token targets;
// they are split greedily into pieces of 2^k targets, largest first, at most data.seq_len
// (a piece of n targets is a window of n + 1 tokens, and consecutive pieces share one token), and
// pieces shorter than min_len are dropped. Each epoch, every bucket's pieces are shuffled (seed,
// epoch) and grouped into batches of B_k = batch_size x seq_len x world_size / 2^k rows
// (remainders wait for the next epoch's shuffle); the batches are then ordered by the curriculum:
//   uniform       — all batches in one random order;
//   short_to_long — shortest bucket first, then longer ones (each bucket's batches shuffled);
//   cyclic        — `cycles` rounds of short_to_long, each round with a 1/cycles share of every
//                   bucket's batches.
// Ranks share the global batch sequence; rank r takes rows r, r + N, ... of each global batch, so
// N ranks x batch B train exactly like 1 process x N·B (bucket row counts must divide by N).
class DecompositionSampler : public WindowSampler {
 public:
  DecompositionSampler(std::shared_ptr<const TokenShard> shard, const SamplerOptions& options);
  Batch next() override;
  std::string state() const override;
  void load_state(const std::string& state) override;

  struct Piece {
    int64_t start;     // first token of the window (n + 1 tokens)
    int64_t log2_len;  // n = 2^log2_len targets
  };
  const std::vector<Piece>& pieces() const { return pieces_; }
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  // The global batch at `index` of `epoch`: its bucket and its pieces (before rank slicing).
  std::pair<int64_t, std::vector<int64_t>> global_batch(int64_t epoch, int64_t index) const;

 private:
  void plan_for(int64_t epoch) const;

  std::shared_ptr<const TokenShard> shard_;
  SamplerOptions options_;
  std::vector<Piece> pieces_;
  std::map<int64_t, std::vector<int64_t>> bucket_pieces_;  // log2 len -> indices into pieces_
  int64_t batches_per_epoch_ = 0;
  int64_t epoch_ = 0, position_ = 0;
  mutable int64_t plan_epoch_ = -1;
  mutable std::vector<std::pair<int64_t, std::vector<int64_t>>> plan_;  // (log2 len, pieces)
};

class SequentialSampler : public WindowSampler {
 public:
  SequentialSampler(std::shared_ptr<const TokenShard> shard, const SamplerOptions& options);
  Batch next() override;
  std::string state() const override;
  void load_state(const std::string& state) override;

  int64_t epoch() const { return epoch_; }
  int64_t windows() const { return windows_; }            // in the whole shard
  int64_t windows_per_rank() const { return per_rank_; }  // per epoch
  // Index of the window this rank reads at `position` of `epoch` (window w = t[wT : wT+T+1]).
  int64_t window_at(int64_t epoch, int64_t position) const;

 private:
  void shuffle_for(int64_t epoch) const;

  std::shared_ptr<const TokenShard> shard_;
  SamplerOptions options_;
  int64_t windows_ = 0;
  int64_t per_rank_ = 0;
  int64_t epoch_ = 0;
  int64_t position_ = 0;  // windows consumed by this rank in the current epoch
  mutable int64_t order_epoch_ = -1;
  mutable std::vector<int64_t> order_;  // the shuffled window order of order_epoch_
};

using SamplerFactory = std::function<std::unique_ptr<WindowSampler>(
    std::shared_ptr<const TokenShard>, const SamplerOptions&)>;
// name -> factory (random, sequential); the table is in sampler.cpp.
Registry<SamplerFactory>& sampler_registry();

// The sampler named by data.sampler with data.batch_size, data.seq_len, seed and
// data.decomposition (the data group bound as its kind's options, data/data_options.h);
// `document_separator` is the tokenizer's EOS (what the shards put between documents). Defined
// for YAML::Node.
template <class ConfigTree>
std::unique_ptr<WindowSampler> make_sampler(const ConfigTree& config,
                                            std::shared_ptr<const TokenShard> shard,
                                            int64_t rank = 0, int64_t world_size = 1,
                                            int64_t document_separator = -1);

// Deterministic evaluation batches: consecutive windows from the start of the shard (batch i
// holds windows iB..iB+B-1), the same on every call. With world_size > 1 the first
// n = min(n_batches, available) batches, rounded down to a multiple of world_size, are dealt
// round-robin, so every rank gets the same count. UserError when the shard is too short.
std::vector<Batch> eval_batches(const TokenShard& shard, int64_t n_batches, int64_t batch_size,
                                int64_t seq_len, int64_t rank = 0, int64_t world_size = 1);

}  // namespace attnlab
