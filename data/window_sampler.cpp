// Random-window and sequential samplers, evaluation batches (see sampler.h).
// Randomness comes from SplitMix64 hashes of (seed, rank, counter) instead of std::
// distributions, whose outputs differ between standard libraries: the same seed gives the same
// batches on every platform, and a sampler's whole state is a few integers.
#include "data/window_sampler.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <tuple>

#include "common/config_access.h"
#include "common/error.h"
#include "config/run_options.h"

namespace attnlab {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Uniform integer in [0, range) from 64 random bits (Lemire's multiply-shift; the bias is below
// range / 2^64, negligible for token counts).
uint64_t below(uint64_t bits, uint64_t range) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(bits) * range) >> 64);
}

void check_options(const SamplerOptions& o) {
  check_user(o.batch_size > 0,
             "data.batch_size must be positive, got " + std::to_string(o.batch_size));
  check_user(o.seq_len > 0, "data.seq_len must be positive, got " + std::to_string(o.seq_len));
  check_user(o.world_size > 0 && o.rank >= 0 && o.rank < o.world_size,
             "sampler rank " + std::to_string(o.rank) + " outside world size " +
                 std::to_string(o.world_size));
}

// Fills row `row` of input/target with window tokens [start, start + T + 1).
void fill_row(const TokenShard& shard, int64_t start, int64_t row, torch::Tensor& input,
              torch::Tensor& target, std::vector<int64_t>& buffer) {
  const int64_t T = input.size(1);
  buffer.resize(static_cast<size_t>(T + 1));
  shard.copy(start, T + 1, buffer.data());
  int64_t* x = input.data_ptr<int64_t>() + row * T;
  int64_t* y = target.data_ptr<int64_t>() + row * T;
  std::copy(buffer.begin(), buffer.begin() + T, x);
  std::copy(buffer.begin() + 1, buffer.end(), y);
}

Batch empty_batch(int64_t batch_size, int64_t seq_len) {
  Batch batch;
  batch.input = torch::empty({batch_size, seq_len}, torch::kLong);
  batch.target = torch::empty({batch_size, seq_len}, torch::kLong);
  return batch;
}

// The random bits of this rank's draw `draw`: global draw draw * world_size + rank of `stream`,
// so the ranks' draws interleave into the one sequence a single process would draw.
uint64_t draw_bits(uint64_t stream, int64_t draw, const SamplerOptions& o) {
  const auto global = static_cast<uint64_t>(draw * o.world_size + o.rank);
  return splitmix64(stream + global * 0x9E3779B97F4A7C15ULL);
}

// A batch of windows starting at offset(draw) for this rank's next batch_size draws.
template <class Offset>
Batch random_windows(const TokenShard& shard, const SamplerOptions& o, int64_t& draws,
                     Offset offset) {
  Batch batch = empty_batch(o.batch_size, o.seq_len);
  std::vector<int64_t> buffer;
  for (int64_t row = 0; row < o.batch_size; ++row)
    fill_row(shard, offset(draws++), row, batch.input, batch.target, buffer);
  return batch;
}

// "kind v1 a=1 b=2" -> {"a": 1, "b": 2}, checking kind and version.
std::map<std::string, int64_t> parse_state(const std::string& state, const std::string& kind) {
  std::istringstream in(state);
  std::string got_kind, version, field;
  in >> got_kind >> version;
  check_user(got_kind == kind && version == "v1",
             "sampler state '" + state + "' is not a " + kind + " v1 sampler state");
  std::map<std::string, int64_t> values;
  while (in >> field) {
    const size_t eq = field.find('=');
    check_user(eq != std::string::npos, "malformed sampler state '" + state + "'");
    try {
      values[field.substr(0, eq)] = std::stoll(field.substr(eq + 1));
    } catch (const std::exception&) {
      throw UserError("malformed sampler state '" + state + "'");
    }
  }
  return values;
}

int64_t field(const std::map<std::string, int64_t>& values, const std::string& name,
              const std::string& state) {
  auto it = values.find(name);
  check_user(it != values.end(), "sampler state '" + state + "' lacks '" + name + "'");
  return it->second;
}

// Positions of `separator` among the shard's first `end` tokens, read 1M tokens at a time.
std::vector<int64_t> separator_positions(const TokenShard& shard, int64_t separator, int64_t end) {
  std::vector<int64_t> positions, chunk;
  const int64_t step = int64_t{1} << 20;
  for (int64_t begin = 0; begin < end; begin += step) {
    const int64_t count = std::min(step, end - begin);
    chunk.resize(static_cast<size_t>(count));
    shard.copy(begin, count, chunk.data());
    for (int64_t i = 0; i < count; ++i)
      if (chunk[static_cast<size_t>(i)] == separator) positions.push_back(begin + i);
  }
  return positions;
}

// Checks a state of an epoch-based sampler `kind` against this run (its seed, its `count` items
// recorded under `count_key`, the world size) and returns (epoch, position); the position may be
// `positions` (the end of an epoch).
std::pair<int64_t, int64_t> epoch_position(const std::string& state, const std::string& kind,
                                           const SamplerOptions& o, const std::string& count_key,
                                           int64_t count, const std::string& count_name,
                                           int64_t positions, const std::string& what_changed) {
  const auto values = parse_state(state, kind);
  check_user(field(values, "seed", state) == static_cast<int64_t>(o.seed) &&
                 field(values, count_key, state) == count &&
                 field(values, "world", state) == o.world_size,
             "sampler state '" + state + "' does not match this run (seed " +
                 std::to_string(o.seed) + ", " + std::to_string(count) + " " + count_name +
                 ", world size " + std::to_string(o.world_size) + "): " + what_changed);
  const int64_t epoch = field(values, "epoch", state);
  const int64_t position = field(values, "position", state);
  check_user(epoch >= 0 && position >= 0 && position <= positions,
             "malformed sampler state '" + state + "'");
  return {epoch, position};
}

}  // namespace

// ---- random windows ----

RandomWindowSampler::RandomWindowSampler(std::shared_ptr<const TokenShard> shard,
                                         const SamplerOptions& options)
    : shard_(std::move(shard)), options_(options) {
  check_options(options_);
  check_user(shard_->size() > options_.seq_len,
             "token shard " + shard_->path().string() + " has " + std::to_string(shard_->size()) +
                 " tokens, too few for data.seq_len=" + std::to_string(options_.seq_len));
  // `^ 0`: the key single-process runs have always used (rank 0), so their batches are unchanged.
  stream_ = splitmix64(splitmix64(options_.seed) ^ 0ULL);
}

int64_t RandomWindowSampler::offset(int64_t draw) const {
  const auto starts = static_cast<uint64_t>(shard_->size() - options_.seq_len);  // i + T + 1 <= N
  return static_cast<int64_t>(below(draw_bits(stream_, draw, options_), starts));
}

Batch RandomWindowSampler::next() {
  return random_windows(*shard_, options_, draws_, [this](int64_t d) { return offset(d); });
}

std::string RandomWindowSampler::state() const {
  return "random v1 seed=" + std::to_string(static_cast<int64_t>(options_.seed)) +
         " draws=" + std::to_string(draws_);
}

void RandomWindowSampler::load_state(const std::string& state) {
  const auto values = parse_state(state, "random");
  check_user(field(values, "seed", state) == static_cast<int64_t>(options_.seed),
             "sampler state '" + state + "' was saved with another seed than " +
                 std::to_string(options_.seed));
  draws_ = field(values, "draws", state);
  check_user(draws_ >= 0, "malformed sampler state '" + state + "'");
}

// ---- random windows at document starts ----

DocumentAlignedSampler::DocumentAlignedSampler(std::shared_ptr<const TokenShard> shard,
                                               const SamplerOptions& options)
    : shard_(std::move(shard)), options_(options) {
  check_options(options_);
  check_user(options_.document_separator >= 0,
             "data.sampler=bos_aligned needs the tokenizer's EOS id (the document separator)");
  // Document starts: 0 and every position after a separator, if a window of T + 1 tokens fits.
  const int64_t last_start = shard_->size() - options_.seq_len - 1;
  if (last_start >= 0) starts_.push_back(0);
  for (int64_t separator :
       separator_positions(*shard_, options_.document_separator, std::max<int64_t>(0, last_start)))
    starts_.push_back(separator + 1);  // <= last_start
  check_user(!starts_.empty(), "token shard " + shard_->path().string() + " has no document that " +
                                   "starts early enough for a window of data.seq_len=" +
                                   std::to_string(options_.seq_len) +
                                   " (data.sampler=bos_aligned)");
  stream_ = splitmix64(splitmix64(options_.seed) ^ 0xB05ULL);
}

int64_t DocumentAlignedSampler::offset(int64_t draw) const {
  const uint64_t pick =
      below(draw_bits(stream_, draw, options_), static_cast<uint64_t>(starts_.size()));
  return starts_[static_cast<size_t>(pick)];
}

Batch DocumentAlignedSampler::next() {
  return random_windows(*shard_, options_, draws_, [this](int64_t d) { return offset(d); });
}

std::string DocumentAlignedSampler::state() const {
  return "bos_aligned v1 seed=" + std::to_string(static_cast<int64_t>(options_.seed)) +
         " starts=" + std::to_string(starts_.size()) + " draws=" + std::to_string(draws_);
}

void DocumentAlignedSampler::load_state(const std::string& state) {
  const auto values = parse_state(state, "bos_aligned");
  check_user(field(values, "seed", state) == static_cast<int64_t>(options_.seed) &&
                 field(values, "starts", state) == static_cast<int64_t>(starts_.size()),
             "sampler state '" + state + "' does not match this run (seed " +
                 std::to_string(options_.seed) + ", " + std::to_string(starts_.size()) +
                 " document starts): the data, seq_len or seed changed");
  draws_ = field(values, "draws", state);
  check_user(draws_ >= 0, "malformed sampler state '" + state + "'");
}

// ---- dataset decomposition ----

namespace {

bool is_power_of_two(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

int64_t floor_log2(int64_t n) {
  int64_t k = 0;
  while ((int64_t{2} << k) <= n) ++k;
  return k;
}

// Fisher-Yates driven by `stream` (as the sequential sampler's shuffle).
void shuffle_with(std::vector<int64_t>& items, uint64_t stream) {
  for (int64_t i = static_cast<int64_t>(items.size()) - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(
        below(splitmix64(stream ^ (static_cast<uint64_t>(i) * 0xD1B54A32D192ED03ULL)),
              static_cast<uint64_t>(i + 1)));
    std::swap(items[static_cast<size_t>(i)], items[static_cast<size_t>(j)]);
  }
}

}  // namespace

DecompositionSampler::DecompositionSampler(std::shared_ptr<const TokenShard> shard,
                                           const SamplerOptions& options)
    : shard_(std::move(shard)), options_(options) {
  check_options(options_);
  const std::string where = "data.sampler=dataset_decomposition: ";
  check_user(options_.document_separator >= 0,
             where + "needs the tokenizer's EOS id (the document separator)");
  check_user(is_power_of_two(options_.seq_len),
             where + "data.seq_len must be a power of two (the longest bucket), got " +
                 std::to_string(options_.seq_len));
  const DecompositionOptions& decomposition = options_.decomposition;
  check_user(
      is_power_of_two(decomposition.min_len()) && decomposition.min_len() <= options_.seq_len,
      "data.decomposition.min_len: expected a power of two <= data.seq_len, got " +
          std::to_string(decomposition.min_len()));
  check_user(
      decomposition.curriculum() == "uniform" || decomposition.curriculum() == "short_to_long" ||
          decomposition.curriculum() == "cyclic",
      "data.decomposition.curriculum: expected one of uniform, short_to_long, cyclic, got '" +
          decomposition.curriculum() + "'");
  check_user(decomposition.cycles() >= 1,
             "data.decomposition.cycles: expected a number >= 1, got " +
                 std::to_string(decomposition.cycles()));
  // Documents: [start, end] with end the separator (or the shard's last token).
  const int64_t n = shard_->size();
  int64_t doc_start = 0;
  auto decompose = [&](int64_t start, int64_t end) {
    int64_t pos = start, targets = end - start;  // L - 1 targets for L tokens
    while (targets >= options_.decomposition.min_len()) {
      const int64_t len = std::min(options_.seq_len, int64_t{1} << floor_log2(targets));
      pieces_.push_back({pos, floor_log2(len)});
      pos += len;
      targets -= len;
    }
  };
  for (int64_t separator : separator_positions(*shard_, options_.document_separator, n)) {
    decompose(doc_start, separator);
    doc_start = separator + 1;
  }
  if (doc_start < n) decompose(doc_start, n - 1);
  for (size_t i = 0; i < pieces_.size(); ++i)
    bucket_pieces_[pieces_[i].log2_len].push_back(static_cast<int64_t>(i));
  for (const auto& [log2_len, members] : bucket_pieces_) {
    const int64_t rows = options_.batch_size * options_.world_size * (options_.seq_len >> log2_len);
    batches_per_epoch_ += static_cast<int64_t>(members.size()) / rows;
  }
  check_user(batches_per_epoch_ > 0,
             where + "token shard " + shard_->path().string() + " decomposes into " +
                 std::to_string(pieces_.size()) + " sequences, too few for one batch of " +
                 std::to_string(options_.batch_size * options_.world_size * options_.seq_len) +
                 " tokens (lower data.batch_size or data.seq_len)");
}

void DecompositionSampler::plan_for(int64_t epoch) const {
  if (plan_epoch_ == epoch) return;
  plan_.clear();
  const uint64_t base = splitmix64(splitmix64(options_.seed) + static_cast<uint64_t>(epoch));
  std::map<int64_t, std::vector<std::pair<int64_t, std::vector<int64_t>>>> by_bucket;
  for (const auto& [log2_len, members] : bucket_pieces_) {
    std::vector<int64_t> order = members;
    shuffle_with(order, base ^ (static_cast<uint64_t>(log2_len + 1) * 0x9E3779B97F4A7C15ULL));
    const auto rows = static_cast<size_t>(options_.batch_size * options_.world_size *
                                          (options_.seq_len >> log2_len));
    for (size_t b = 0; b + rows <= order.size(); b += rows)
      by_bucket[log2_len].push_back(
          {log2_len, std::vector<int64_t>(order.begin() + static_cast<std::ptrdiff_t>(b),
                                          order.begin() + static_cast<std::ptrdiff_t>(b + rows))});
  }
  if (options_.decomposition.curriculum() == "uniform") {
    std::vector<std::pair<int64_t, std::vector<int64_t>>> all;
    for (auto& [log2_len, batches] : by_bucket)
      for (auto& batch : batches) all.push_back(std::move(batch));
    std::vector<int64_t> order(all.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    shuffle_with(order, base ^ 0x5EEDULL);
    for (int64_t i : order) plan_.push_back(std::move(all[static_cast<size_t>(i)]));
  } else {
    const int64_t cycles =
        options_.decomposition.curriculum() == "cyclic" ? options_.decomposition.cycles() : 1;
    for (int64_t c = 0; c < cycles; ++c) {
      for (auto& [log2_len, batches] : by_bucket) {  // ascending length
        const auto count = static_cast<int64_t>(batches.size());
        for (int64_t i = c * count / cycles; i < (c + 1) * count / cycles; ++i)
          plan_.push_back(batches[static_cast<size_t>(i)]);
      }
    }
  }
  plan_epoch_ = epoch;
}

std::pair<int64_t, std::vector<int64_t>> DecompositionSampler::global_batch(int64_t epoch,
                                                                            int64_t index) const {
  check_user(index >= 0 && index < batches_per_epoch_,
             "dataset_decomposition batch index out of range");
  plan_for(epoch);
  return plan_[static_cast<size_t>(index)];
}

Batch DecompositionSampler::next() {
  if (position_ == batches_per_epoch_) ++epoch_, position_ = 0;
  const auto [log2_len, members] = global_batch(epoch_, position_++);
  const int64_t len = int64_t{1} << log2_len;
  const auto rows = static_cast<int64_t>(members.size()) / options_.world_size;
  Batch batch = empty_batch(rows, len);
  std::vector<int64_t> buffer;
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t piece = members[static_cast<size_t>(row * options_.world_size + options_.rank)];
    fill_row(*shard_, pieces_[static_cast<size_t>(piece)].start, row, batch.input, batch.target,
             buffer);
  }
  return batch;
}

std::string DecompositionSampler::state() const {
  return "dataset_decomposition v1 seed=" + std::to_string(static_cast<int64_t>(options_.seed)) +
         " pieces=" + std::to_string(pieces_.size()) +
         " world=" + std::to_string(options_.world_size) + " epoch=" + std::to_string(epoch_) +
         " position=" + std::to_string(position_);
}

void DecompositionSampler::load_state(const std::string& state) {
  std::tie(epoch_, position_) =
      epoch_position(state, "dataset_decomposition", options_, "pieces",
                     static_cast<int64_t>(pieces_.size()), "sequences", batches_per_epoch_,
                     "the data, seq_len, min_len, seed or number of ranks changed");
}

// ---- sequential epochs ----

SequentialSampler::SequentialSampler(std::shared_ptr<const TokenShard> shard,
                                     const SamplerOptions& options)
    : shard_(std::move(shard)), options_(options) {
  check_options(options_);
  windows_ = (shard_->size() - 1) / options_.seq_len;
  per_rank_ = windows_ / options_.world_size;  // the remainder is skipped, differently per epoch
  check_user(per_rank_ > 0, "token shard " + shard_->path().string() + " has " +
                                std::to_string(shard_->size()) + " tokens: too few for one " +
                                "window of data.seq_len=" + std::to_string(options_.seq_len) +
                                " per rank with " + std::to_string(options_.world_size) + " ranks");
}

void SequentialSampler::shuffle_for(int64_t epoch) const {
  if (order_epoch_ == epoch) return;
  order_.resize(static_cast<size_t>(windows_));
  for (int64_t i = 0; i < windows_; ++i) order_[static_cast<size_t>(i)] = i;
  // Fisher-Yates driven by a (seed, epoch) stream; identical on every rank, so the ranks'
  // interleaved shares of the permutation are disjoint.
  const uint64_t stream = splitmix64(splitmix64(options_.seed) + static_cast<uint64_t>(epoch));
  for (int64_t i = windows_ - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(
        below(splitmix64(stream ^ (static_cast<uint64_t>(i) * 0xD1B54A32D192ED03ULL)),
              static_cast<uint64_t>(i + 1)));
    std::swap(order_[static_cast<size_t>(i)], order_[static_cast<size_t>(j)]);
  }
  order_epoch_ = epoch;
}

int64_t SequentialSampler::window_at(int64_t epoch, int64_t position) const {
  check_user(position >= 0 && position < per_rank_, "sequential sampler position out of range");
  shuffle_for(epoch);
  // Strided, not blocked: at each step the N ranks read consecutive stretches of the order, the
  // same windows one process with an N-times larger batch reads (see sampler.h).
  return order_[static_cast<size_t>(position * options_.world_size + options_.rank)];
}

Batch SequentialSampler::next() {
  Batch batch = empty_batch(options_.batch_size, options_.seq_len);
  std::vector<int64_t> buffer;
  for (int64_t row = 0; row < options_.batch_size; ++row) {
    if (position_ == per_rank_) ++epoch_, position_ = 0;  // a batch may straddle two epochs
    const int64_t window = window_at(epoch_, position_++);
    fill_row(*shard_, window * options_.seq_len, row, batch.input, batch.target, buffer);
  }
  return batch;
}

std::string SequentialSampler::state() const {
  return "sequential v1 seed=" + std::to_string(static_cast<int64_t>(options_.seed)) +
         " windows=" + std::to_string(windows_) + " world=" + std::to_string(options_.world_size) +
         " epoch=" + std::to_string(epoch_) + " position=" + std::to_string(position_);
}

void SequentialSampler::load_state(const std::string& state) {
  std::tie(epoch_, position_) =
      epoch_position(state, "sequential", options_, "windows", windows_, "windows", per_rank_,
                     "the data, seq_len, seed or number of ranks changed");
}

// ---- table, factory, evaluation ----

Registry<SamplerFactory>& sampler_registry() {
  static Registry<SamplerFactory> registry = [] {
    Registry<SamplerFactory> r("sampler");
    r.add("random", [](std::shared_ptr<const TokenShard> shard, const SamplerOptions& options) {
      return std::make_unique<RandomWindowSampler>(std::move(shard), options);
    });
    r.add("sequential", [](std::shared_ptr<const TokenShard> shard, const SamplerOptions& options) {
      return std::make_unique<SequentialSampler>(std::move(shard), options);
    });
    r.add("dataset_decomposition",
          [](std::shared_ptr<const TokenShard> shard, const SamplerOptions& options) {
            return std::make_unique<DecompositionSampler>(std::move(shard), options);
          });
    r.add("bos_aligned",
          [](std::shared_ptr<const TokenShard> shard, const SamplerOptions& options) {
            return std::make_unique<DocumentAlignedSampler>(std::move(shard), options);
          });
    return r;
  }();
  return registry;
}

template <class ConfigTree>
std::unique_ptr<WindowSampler> make_sampler(const ConfigTree& config,
                                            std::shared_ptr<const TokenShard> shard, int64_t rank,
                                            int64_t world_size, int64_t document_separator) {
  SamplerOptions options;
  options.document_separator = document_separator;
  const DataOptions data = data_options(config);
  options.decomposition = language_model_data(data).decomposition();
  options.batch_size = cfg::get<int64_t>(config, "data.batch_size");
  options.seq_len = cfg::get<int64_t>(config, "data.seq_len");
  options.seed = static_cast<uint64_t>(run_options(config).seed);
  options.rank = rank;
  options.world_size = world_size;
  const std::string& name = language_model_data(data).sampler();
  return sampler_registry().get(name)(std::move(shard), options);
}

template std::unique_ptr<WindowSampler> make_sampler(const YAML::Node&,
                                                     std::shared_ptr<const TokenShard>, int64_t,
                                                     int64_t, int64_t);

std::vector<Batch> eval_batches(const TokenShard& shard, int64_t n_batches, int64_t batch_size,
                                int64_t seq_len, int64_t rank, int64_t world_size) {
  check_user(n_batches > 0,
             "config key 'trainer.eval_batches': expected at least 1 evaluation "
             "batch, got " +
                 std::to_string(n_batches));
  check_options(SamplerOptions{batch_size, seq_len, 0, rank, world_size});
  const int64_t available = std::max<int64_t>(0, (shard.size() - 1) / seq_len) / batch_size;
  int64_t total = std::min(n_batches, available);
  total -= total % world_size;
  // Name the cause (the validation split's size) and the keys that change it.
  const int64_t needed = batch_size * seq_len * world_size + 1;
  check_user(total > 0,
             "the validation split " + shard.path().string() + " has " +
                 std::to_string(shard.size()) + " tokens, too few for one evaluation batch of " +
                 std::to_string(batch_size) + " x " + std::to_string(seq_len) + " tokens" +
                 (world_size > 1 ? " on each of " + std::to_string(world_size) + " ranks" : "") +
                 " (" + std::to_string(needed) +
                 " tokens): raise data.val_fraction (or give data.val files), or lower "
                 "data.batch_size or data.seq_len");
  std::vector<Batch> batches;
  std::vector<int64_t> buffer;
  for (int64_t i = rank; i < total; i += world_size) {
    Batch batch = empty_batch(batch_size, seq_len);
    for (int64_t row = 0; row < batch_size; ++row)
      fill_row(shard, (i * batch_size + row) * seq_len, row, batch.input, batch.target, buffer);
    batches.push_back(std::move(batch));
  }
  return batches;
}

}  // namespace attnlab
